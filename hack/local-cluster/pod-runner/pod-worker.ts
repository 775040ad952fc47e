/**
 * One pod on a fake node, as a kubelet would run it: init containers in order, then every
 * container as a sandboxed process bound to the pod's IP; restarts per restartPolicy with a
 * back-off (restartCount rises); readiness probes; SIGTERM and the grace period on deletion;
 * and the pod's status written back after every change.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  V1Container,
  V1ContainerStatus,
  V1Pod,
  V1PodCondition,
  V1PodStatus,
} from '@kubernetes/client-node';
import { network, paths } from '../layout.ts';
import { expandReferences, isTiercacheImage, launchFor } from './images.ts';
import {
  type ClusterReader,
  containerEnv,
  containerMounts,
  refreshVolumes,
  renderVolumes,
} from './materialise.ts';
import { type ImageRuntime, startInImage } from './oci.ts';
import { probe } from './probes.ts';
import { startSandboxed } from './sandbox.ts';

const BACKOFF_START_MS = 1000;
/** How often mounted ConfigMaps and Secrets are brought up to date (a kubelet: within a minute). */
const VOLUME_REFRESH_MS = 10_000;
const BACKOFF_MAX_MS = 20_000;

interface Running {
  spec: V1Container;
  proc: ChildProcess | undefined;
  restarts: number;
  ready: boolean;
  startedAt: string | undefined;
  state: V1ContainerStatus['state'];
  lastState: V1ContainerStatus['lastState'];
  backoff: NodeJS.Timeout | undefined;
  probeTimer: NodeJS.Timeout | undefined;
}

export interface WorkerDeps {
  cluster: ClusterReader;
  writeStatus(pod: V1Pod, status: V1PodStatus): Promise<void>;
  log(msg: string): void;
  /** How tiercache-image containers run: as the checkout's CLI, or from the built image. */
  imageRuntime: ImageRuntime;
}

const now = () => new Date().toISOString();

export class PodWorker {
  pod: V1Pod;
  readonly ip: string;
  readonly #deps: WorkerDeps;
  readonly #dir: string;
  readonly #containers = new Map<string, Running>();
  #stopping = false;
  #phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' = 'Pending';
  #message: string | undefined;
  #volumeDirs: Record<string, string> = {};
  #volumeRefresh: NodeJS.Timeout | undefined;
  #statusChain: Promise<void> = Promise.resolve();

  constructor(pod: V1Pod, ip: string, deps: WorkerDeps) {
    this.pod = pod;
    this.ip = ip;
    this.#deps = deps;
    this.#dir = join(paths.pods, pod.metadata!.uid!);
  }

  get name(): string {
    return `${this.pod.metadata!.namespace}/${this.pod.metadata!.name}`;
  }

  /** Pids of the running containers (for cluster:down's sweep and for tests). */
  pids(): number[] {
    return [...this.#containers.values()].flatMap((c) =>
      c.proc?.pid && c.proc.exitCode === null ? [c.proc.pid] : [],
    );
  }

  async start(): Promise<void> {
    try {
      mkdirSync(this.#dir, { recursive: true });
      this.#volumeDirs = await renderVolumes(this.pod, this.#dir, this.#deps.cluster);
      this.#volumeRefresh = setInterval(() => {
        if (!this.#stopping) void refreshVolumes(this.pod, this.#dir, this.#deps.cluster);
      }, VOLUME_REFRESH_MS).unref();
      this.#report();
      for (const init of this.pod.spec?.initContainers ?? []) {
        const code = await this.#runToCompletion(init);
        if (code !== 0) {
          this.#phase = 'Failed';
          this.#message = `init container ${init.name} exited with ${code}`;
          this.#report();
          return;
        }
      }
      for (const c of this.pod.spec?.containers ?? []) await this.#launch(this.#entry(c));
      this.#phase = 'Running';
      this.#report();
    } catch (err) {
      this.#message = (err as Error).message;
      this.#deps.log(`${this.name}: cannot start: ${this.#message}`);
      this.#report();
    }
  }

  /**
   * As kubelet: each container's preStop hook (sleep, or exec inside the container) runs
   * first, then SIGTERM; whatever is left when the grace period ends is SIGKILLed.
   */
  async stop(graceSeconds: number, hooks = true): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#volumeRefresh);
    const started = Date.now();
    const running = [...this.#containers.values()];
    for (const c of running) {
      clearTimeout(c.backoff);
      clearInterval(c.probeTimer);
    }
    if (hooks)
      await Promise.all(running.map((c) => runPreStop(c.spec, c.proc, graceSeconds * 1000)));
    for (const c of running) c.proc?.kill('SIGTERM');
    const exited = running.map((c) =>
      c.proc && c.proc.exitCode === null && c.proc.signalCode === null
        ? new Promise((r) => c.proc!.once('exit', r))
        : Promise.resolve(),
    );
    const left = Math.max(0, graceSeconds * 1000 - (Date.now() - started));
    const timer = new Promise((r) => setTimeout(r, left));
    await Promise.race([Promise.all(exited), timer]);
    for (const c of running)
      if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(exited);
    await this.#statusChain;
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #entry(spec: V1Container): Running {
    const entry: Running = {
      spec,
      proc: undefined,
      restarts: 0,
      ready: false,
      startedAt: undefined,
      state: { waiting: { reason: 'ContainerCreating' } },
      lastState: {},
      backoff: undefined,
      probeTimer: undefined,
    };
    this.#containers.set(spec.name, entry);
    return entry;
  }

  async #spawn(spec: V1Container): Promise<ChildProcess> {
    // The pod object may not show its IP yet: fieldRefs see the IP this runner gave it.
    const pod = {
      ...this.pod,
      status: { ...this.pod.status, podIP: this.ip, podIPs: [{ ip: this.ip }] },
    };
    const containerEnvironment = await containerEnv(pod, spec, this.#deps.cluster);
    const hostname = this.pod.spec?.hostname ?? this.pod.metadata!.name!;
    const ns = this.pod.metadata!.namespace!;
    const fqdn = this.pod.spec?.subdomain
      ? `${hostname}.${this.pod.spec.subdomain}.${ns}.svc.${network.clusterDomain}`
      : '';
    const dir = join(this.#dir, 'containers', spec.name);
    mkdirSync(dir, { recursive: true });
    // The termination-message file, as the kubelet gives every container: a file of the
    // runner's bound at terminationMessagePath, read back when the container exits.
    const terminationLog = this.#terminationLog(spec);
    writeFileSync(terminationLog, '');
    chmodSync(terminationLog, 0o666);
    const mounts = [
      ...containerMounts(spec, this.#volumeDirs),
      {
        source: terminationLog,
        target: spec.terminationMessagePath ?? '/dev/termination-log',
        readOnly: false,
        file: true,
      },
    ];
    const files = {
      '/etc/hosts': `127.0.0.1 localhost\n${this.ip} ${fqdn} ${hostname}\n`,
      '/etc/resolv.conf': `nameserver ${network.dnsIp}\nsearch ${ns}.svc.${network.clusterDomain} svc.${network.clusterDomain} ${network.clusterDomain}\noptions ndots:5\n`,
      '/etc/hostname': `${hostname}\n`,
    };
    const logFile = this.#logFile(spec);
    const expand = (a: string) => expandReferences(a, containerEnvironment);
    if (this.#deps.imageRuntime === 'oci' && isTiercacheImage(spec.image))
      return startInImage({
        pod,
        container: spec,
        dir,
        mounts,
        files,
        env: containerEnvironment,
        command: spec.command?.map(expand),
        args: (spec.args ?? []).map(expand),
        podIp: this.ip,
        logFile,
      });
    const launch = launchFor(spec, this.ip);
    const env = { ...containerEnvironment, ...launch.env };
    return startSandboxed({
      dir,
      mounts,
      files,
      workingDir: spec.workingDir ?? '/',
      argv: launch.argv.map((a) => expandReferences(a, env)),
      env,
      logFile,
    });
  }

  #runToCompletion(spec: V1Container): Promise<number> {
    return this.#spawn(spec).then(
      (proc) => new Promise((resolve) => proc.once('exit', (code) => resolve(code ?? 1))),
    );
  }

  async #launch(c: Running): Promise<void> {
    if (this.#stopping) return;
    try {
      c.proc = await this.#spawn(c.spec);
    } catch (err) {
      c.state = { waiting: { reason: 'CreateContainerError', message: (err as Error).message } };
      this.#report();
      return;
    }
    c.startedAt = now();
    c.state = { running: { startedAt: new Date(c.startedAt) } };
    c.ready = !c.spec.readinessProbe;
    c.proc.once('exit', (code, signal) => this.#exited(c, code, signal));
    this.#watchReadiness(c);
    this.#report();
  }

  /** Where a container's output goes (the kubelet's `kubectl logs`). */
  #logFile(spec: V1Container): string {
    const { namespace, name } = this.pod.metadata!;
    return join(paths.logs, `pod-${namespace}-${name}-${spec.name}.log`);
  }

  #terminationLog(spec: V1Container): string {
    return join(this.#dir, 'containers', spec.name, 'termination-log');
  }

  /** What the kubelet reports as `terminated.message`: the file, else (if asked) the log's end. */
  #terminationMessage(spec: V1Container, exitCode: number): string | undefined {
    const read = (path: string, max: number) => {
      try {
        const content = readFileSync(path);
        return content.subarray(Math.max(0, content.length - max)).toString('utf8');
      } catch {
        return '';
      }
    };
    const written = read(this.#terminationLog(spec), 4096);
    if (written) return written;
    if (exitCode === 0 || spec.terminationMessagePolicy !== 'FallbackToLogsOnError')
      return undefined;
    return read(this.#logFile(spec), 2048).split('\n').slice(-80).join('\n') || undefined;
  }

  #exited(c: Running, code: number | null, signal: NodeJS.Signals | null): void {
    clearInterval(c.probeTimer);
    c.ready = false;
    const exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
    const message = this.#terminationMessage(c.spec, exitCode);
    const terminated = {
      exitCode,
      signal: undefined,
      ...(message ? { message } : {}),
      reason: exitCode === 0 ? 'Completed' : 'Error',
      startedAt: c.startedAt ? new Date(c.startedAt) : undefined,
      finishedAt: new Date(),
    };
    if (this.#stopping) return;
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      c.state = { terminated };
      const all = [...this.#containers.values()];
      if (all.every((x) => x.state?.terminated)) {
        this.#phase = all.every((x) => x.state?.terminated?.exitCode === 0)
          ? 'Succeeded'
          : 'Failed';
        clearInterval(this.#volumeRefresh);
      }
      this.#report();
      return;
    }
    c.lastState = { terminated };
    const delay = Math.min(BACKOFF_START_MS * 2 ** c.restarts, BACKOFF_MAX_MS);
    c.restarts += 1;
    c.state = {
      waiting: {
        reason: 'CrashLoopBackOff',
        message: `back-off ${delay / 1000}s restarting failed container=${c.spec.name}`,
      },
    };
    this.#deps.log(
      `${this.name}: container ${c.spec.name} exited (${exitCode}); restart #${c.restarts} in ${delay} ms`,
    );
    this.#report();
    c.backoff = setTimeout(() => void this.#launch(c), delay);
  }

  #watchReadiness(c: Running): void {
    const p = c.spec.readinessProbe;
    if (!p) return;
    const named = Object.fromEntries(
      (c.spec.ports ?? []).filter((x) => x.name).map((x) => [x.name!, x.containerPort]),
    );
    const check = async () => {
      const ok = await probe(p, this.ip, c.proc?.pid, named);
      if (ok !== c.ready && c.state?.running) {
        c.ready = ok;
        this.#report();
      }
    };
    setTimeout(() => void check(), (p.initialDelaySeconds ?? 0) * 1000);
    c.probeTimer = setInterval(() => void check(), (p.periodSeconds ?? 10) * 1000);
  }

  #report(): void {
    const statuses: V1ContainerStatus[] = (this.pod.spec?.containers ?? []).map((spec) => {
      const c = this.#containers.get(spec.name);
      return {
        name: spec.name,
        image: spec.image ?? '',
        imageID: `tiercache-pod-runner://${spec.image}`,
        containerID: c?.proc?.pid ? `pid://${c.proc.pid}` : undefined,
        ready: c?.ready ?? false,
        started: Boolean(c?.state?.running),
        restartCount: c?.restarts ?? 0,
        state: c?.state ?? { waiting: { reason: 'PodInitializing' } },
        lastState: c?.lastState ?? {},
      };
    });
    const allReady =
      statuses.length > 0 && statuses.every((s) => s.ready) && this.#phase === 'Running';
    const cond = (type: string, ok: boolean): V1PodCondition => ({
      type,
      status: ok ? 'True' : 'False',
      lastTransitionTime: new Date(),
    });
    const status: V1PodStatus = {
      phase: this.#phase,
      podIP: this.ip,
      podIPs: [{ ip: this.ip }],
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      startTime: this.pod.status?.startTime ?? new Date(),
      message: this.#message,
      conditions: [
        cond('PodScheduled', true),
        cond(
          'Initialized',
          this.#phase !== 'Pending' || (this.pod.spec?.initContainers ?? []).length === 0,
        ),
        cond('ContainersReady', allReady),
        cond('Ready', allReady),
      ],
      containerStatuses: statuses,
    };
    // Writes are serialised so an older status never lands after a newer one.
    this.#statusChain = this.#statusChain
      .then(() => this.#deps.writeStatus(this.pod, status))
      .catch((err) =>
        this.#deps.log(`${this.name}: status write failed: ${(err as Error).message}`),
      );
  }
}

/** A container's preStop hook, bounded by the grace period (its failure does not stop the stop). */
async function runPreStop(
  spec: V1Container,
  proc: ChildProcess | undefined,
  limitMs: number,
): Promise<void> {
  const hook = spec.lifecycle?.preStop;
  if (!hook || !proc?.pid || proc.exitCode !== null) return;
  if (hook.sleep) {
    await new Promise((r) => setTimeout(r, Math.min(hook.sleep!.seconds * 1000, limitMs)));
    return;
  }
  const command = hook.exec?.command;
  if (!command?.length) return;
  await new Promise<void>((resolve) => {
    const child = spawn(
      'nsenter',
      ['--target', String(proc.pid), '--mount', '--root', '--wd', '--', ...command],
      {
        stdio: 'ignore',
        timeout: limitMs,
      },
    );
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}
