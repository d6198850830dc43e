// The API's shapes, by the names the client uses. They come from
// schema.gen.ts, which `npm run gen:types` generates from api/openapi.json
// (the server's OpenAPI document) and `npm run check:types` keeps current:
// never write a shape of the API by hand here, alias the generated one.
import type { components, operations } from './schema.gen';

type Schemas = components['schemas'];
type Parameters = components['parameters'];

/**
 * A page of a list or search answer: its items and the URL of the next
 * page, null on the last one. Every *List schema of the API has this shape.
 */
export type Page<T> = Omit<Schemas['ProductList'], 'results'> & { results: T[] };

export type Token = Schemas['Token'];
export type TokenRequest = Schemas['TokenRequest'];

export type Product = Schemas['Product'];
export type ProductCreate = Schemas['ProductCreate'];
export type ProductReplace = Schemas['ProductReplace'];
/** The writable fields of a product, as both POST and PUT take them. */
export type ProductInput = ProductCreate & ProductReplace;
/** What a products CSV import did. */
export type ImportResult = Schemas['ImportResult'];
/** An ISO 4217 code the API accepts. */
export type Currency = Schemas['Currency'];

/** A sort of the product list: a key, '-' first for descending. */
export type Ordering = Parameters['Ordering'];
/** A key the product list sorts by. */
export type OrderKey = Exclude<Ordering, `-${string}`>;

export type Notification = Schemas['Notification'];
export type AdminNotification = Schemas['AdminNotification'];
/** A message of GET /ws/notifications/. */
export type PushNotification = Schemas['PushNotification'];

export type User = Schemas['User'];
export type UserCreate = Schemas['UserCreate'];
export type UserPatch = Schemas['UserPatch'];
export type PasswordChange = Schemas['PasswordChange'];
export type UserBulk = Schemas['UserBulk'];
export type UserBulkResult = Schemas['UserBulkResult'];
export type ProductBulkDelete = Schemas['ProductBulkDelete'];
export type ProductBulkDeleteResult = Schemas['ProductBulkDeleteResult'];

export type Superuser = Schemas['Superuser'];
export type SuperuserPatch = Schemas['SuperuserPatch'];

export type Domain = Schemas['Domain'];
export type DomainCreate = Schemas['DomainCreate'];
export type DomainPatch = Schemas['DomainPatch'];

export type Tenant = Schemas['Tenant'];
export type TenantCreate = Schemas['TenantCreate'];
export type TenantPatch = Schemas['TenantPatch'];
/** Where a tenant is in its life: only active ones are served. */
export type TenantState = Tenant['state'];
/** A move of a tenant to another PostgreSQL cluster, as far as it got. */
export type TenantMoveState = Schemas['TenantMoveState'];
export type TenantMove = Schemas['TenantMove'];

type TenantListQuery = NonNullable<operations['platformListTenants']['parameters']['query']>;
/** A sort of the platform's tenant list: a key, '-' first for descending. */
export type TenantOrdering = NonNullable<TenantListQuery['ordering']>;
/** A key the tenant list sorts by. */
export type TenantOrderKey = Exclude<TenantOrdering, `-${string}`>;

export type AuditEntry = Schemas['AuditEntry'];
export type AuditActor = Schemas['AuditActor'];
/** The base path of an audit trail: a tenant's (staff) or the platform's (superusers). */
export type AuditBase = '/api/admin/audit/' | '/api/platform/audit/';
type AuditQuery = NonNullable<operations['adminListAudit']['parameters']['query']>;
/** The filters of an audit list. */
export type AuditFilters = Pick<AuditQuery, 'actor' | 'action' | 'target_type' | 'target_id'>;
