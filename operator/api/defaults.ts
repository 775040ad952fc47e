/**
 * The CacheCluster defaults, from their one source: the CRD's schema (crds/). The API server
 * fills them in when it stores an object; the operator applies the same schema again, because
 * an object stored before a default was added, or read from a file, lacks them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  loadYaml,
  type V1CustomResourceDefinition,
  type V1JSONSchemaProps,
} from '@kubernetes/client-node';

/** A schema as client-node models it. */
export type Schema = V1JSONSchemaProps;

/**
 * client-node names `default` `_default` where it knows the schema's type; inside `items`
 * (typed `any`) the YAML's own name stays.
 */
const defaultOf = (s: Schema): unknown => s._default ?? (s as { default?: unknown }).default;

const CRD = fileURLToPath(new URL('../../crds/cacheclusters.tiercache.io.yaml', import.meta.url));

let specSchema: Schema | undefined;

/** The schema of `spec` in the CRD's served version, read once. */
export function cacheClusterSpecSchema(): Schema {
  specSchema ??= loadYaml<V1CustomResourceDefinition>(readFileSync(CRD, 'utf8')).spec.versions[0]!
    .schema!.openAPIV3Schema!.properties!.spec!;
  return specSchema;
}

/**
 * Structural defaulting as the API server does it (pure): a missing property with a default
 * gets a copy of it, then defaults apply inside whatever is there, objects and array items alike.
 */
export function applyDefaults(schema: Schema, value: unknown): unknown {
  if (Array.isArray(value))
    return schema.items ? value.map((v) => applyDefaults(schema.items!, v)) : value;
  if (value === null || typeof value !== 'object' || !schema.properties) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, property] of Object.entries(schema.properties)) {
    if (out[key] === undefined && defaultOf(property) !== undefined)
      out[key] = structuredClone(defaultOf(property));
    if (out[key] !== undefined) out[key] = applyDefaults(property, out[key]);
  }
  return out;
}
