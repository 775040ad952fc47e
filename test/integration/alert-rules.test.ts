/**
 * The chart's alerts (charts/tiercache/files/alerts.yaml) through promtool, built from its Go
 * module like the control plane: they parse, and each fires on its failure after its `for` and
 * stays quiet on a healthy cache (test/promtool/alerts.test.yaml).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBinaries, RULES_GROUPS } from '../../hack/local-cluster/binaries.ts';

const ALERTS = fileURLToPath(new URL('../../charts/tiercache/files/alerts.yaml', import.meta.url));
const TESTS = fileURLToPath(new URL('../promtool/alerts.test.yaml', import.meta.url));

let promtool: string;
const run = (...args: string[]) => execFileSync(promtool, args, { encoding: 'utf8' });

beforeAll(() => {
  ({ promtool } = ensureBinaries(RULES_GROUPS) as { promtool: string });
}, 1_800_000);

describe('alerting rules', () => {
  it('pass promtool check rules', () => {
    expect(run('check', 'rules', ALERTS)).toMatch(/SUCCESS: 11 rules found/);
  });

  it('fire on the failures they are for, and only those (promtool test rules)', () => {
    expect(run('test', 'rules', TESTS)).toMatch(/SUCCESS/);
  });
});
