/**
 * `tiercache crds`: server-side applies the CustomResourceDefinitions in crds/ (the single
 * source the chart also carries) and waits until the API server serves them. Helm installs
 * a chart's crds/ once and never upgrades them; the chart's pre-upgrade hook runs this, so
 * `helm upgrade` brings the CRD along with the operator that needs it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { TiercacheError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { apply, connect } from './runtime/kube.ts';

const CRDS = fileURLToPath(new URL('../crds', import.meta.url));
const ESTABLISHED_WITHIN_MS = 30_000;

/** The CRDs of crds/ (samples/ and other folders left out). */
export function bundledCrds(dir = CRDS): V1CustomResourceDefinition[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadAllYaml(readFileSync(join(dir, f), 'utf8')) as V1CustomResourceDefinition[])
    .filter((d) => d?.kind === 'CustomResourceDefinition');
}

export async function applyCrds(log: Logger): Promise<void> {
  const kube = connect();
  const api = kube.config.makeApiClient(ApiextensionsV1Api);
  for (const crd of bundledCrds()) {
    const name = crd.metadata!.name!;
    await apply(kube, crd);
    const deadline = Date.now() + ESTABLISHED_WITHIN_MS;
    for (;;) {
      const live = await api.readCustomResourceDefinition({ name });
      const established = live.status?.conditions?.some(
        (c) => c.type === 'Established' && c.status === 'True',
      );
      if (established) break;
      if (Date.now() > deadline)
        throw new TiercacheError('TIMEOUT', `CRD ${name} not Established within 30 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    log.info({ crd: name }, 'CRD applied');
  }
}
