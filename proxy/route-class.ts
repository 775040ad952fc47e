/**
 * The data routes, by class: what CORS opens and what per-client rate limits count. Everything
 * else (admin, probes, metrics, the dashboard) is no data route.
 */
export type RouteClass = 'tmdb' | 'images' | 'crypto';

/** The class of the route `url` goes to, undefined for a route that serves no public data. */
export function routeClassOf(url: string): RouteClass | undefined {
  if (url.startsWith('/3/')) return 'tmdb';
  if (url.startsWith('/t/p/')) return 'images';
  if (url.startsWith('/api/') && !url.startsWith('/api/cache/')) return 'crypto';
  return undefined;
}
