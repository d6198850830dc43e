// The API's shapes (api/openapi.json), as the client uses them.

export interface Page<T> {
  results: T[];
  next: string | null;
}

export interface Token {
  token: string;
  expires_at: string;
}

export interface Product {
  id: string;
  sku: string;
  name: string;
  description: string;
  price: string;
  currency: string;
  stock: number;
  version: number;
  created_at: string;
  updated_at: string;
}

/** The writable fields of a product (POST, PUT). */
export interface ProductInput {
  sku: string;
  name: string;
  description: string;
  price: string;
  currency: string;
  stock: number;
}

export const orderings = ['created_at', 'updated_at', 'name', 'sku', 'price', 'stock'] as const;
export type OrderKey = (typeof orderings)[number];

export interface Notification {
  id: number;
  event_id: string;
  kind: string;
  title: string;
  data: Record<string, unknown>;
  read_at: string | null;
  created_at: string;
}

export interface AdminNotification extends Notification {
  user_id: string;
}

/** A message of GET /ws/notifications/. */
export interface PushNotification {
  type: 'notification';
  id: number;
  event_id: string;
  kind: string;
  title: string;
  data: Record<string, unknown>;
  created_at: string;
}

export interface User {
  id: string;
  email: string;
  is_staff: boolean;
  is_active: boolean;
  created_at: string;
  updated_at: string;
}

export interface Domain {
  domain: string;
  is_primary: boolean;
}

export interface Tenant {
  schema: string;
  name: string;
  state: 'provisioning' | 'active' | 'deleting';
  schema_version: number;
  created_at: string;
  updated_at: string;
  domains: Domain[];
}
