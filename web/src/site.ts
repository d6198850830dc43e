// Which side of the product this page is: the platform admin on the public
// domain, or a tenant's app on one of its domains. The Go server says so in
// <meta name="saas-site"> (api/web.go); without it (the Vite dev server) the
// host decides: localhost is the public domain.
export interface Site {
  kind: 'platform' | 'tenant';
  /** The tenant's display name; '' on the platform side. */
  name: string;
}

export function readSite(doc: Document = document, hostname: string = location.hostname): Site {
  const meta = doc.querySelector<HTMLMetaElement>('meta[name="saas-site"]');
  const kind = meta?.content;
  if (kind === 'platform' || kind === 'tenant') {
    return { kind, name: meta?.dataset.name ?? '' };
  }
  if (hostname === 'localhost' || hostname === '127.0.0.1') return { kind: 'platform', name: '' };
  const label = hostname.split('.')[0] ?? hostname;
  return { kind: 'tenant', name: label.charAt(0).toUpperCase() + label.slice(1) };
}

export const site: Site = readSite();
