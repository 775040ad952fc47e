/** Kubernetes Events about a CacheCluster (bootstrap, failover, heal, migrations), best effort. */
import type { Logger } from '../../lib/log.ts';
import { API_VERSION, type CacheCluster, KIND } from '../api/types.ts';
import { FIELD_MANAGER } from '../resources/names.ts';
import type { Kube } from '../runtime/kube.ts';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  readonly #kube: Kube;
  readonly #log: Logger;
  readonly #instance: string;

  constructor(kube: Kube, log: Logger, instance: string) {
    this.#kube = kube;
    this.#log = log;
    this.#instance = instance;
  }

  async record(cc: CacheCluster, type: EventType, reason: string, message: string): Promise<void> {
    const now = new Date();
    const { name, namespace, uid } = cc.metadata;
    this.#log[type === 'Warning' ? 'warn' : 'info'](
      { cachecluster: `${namespace}/${name}`, reason },
      message,
    );
    try {
      await this.#kube.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { apiVersion: API_VERSION, kind: KIND, name, namespace, uid },
          type,
          reason,
          message,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: FIELD_MANAGER },
          reportingComponent: FIELD_MANAGER,
          reportingInstance: this.#instance,
        },
      });
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'could not record an event');
    }
  }
}
