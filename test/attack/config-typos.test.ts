import { describe, expect, it } from 'vitest';
import { runCli } from '../../harness/cli-process.js';
import { startSink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';

/**
 * Attack on the unknown-variable refusal (f-config: a TRANSMITTER_* variable that is no option
 * exits 2). Variables the platform sets, not the operator, must not stop the service: Kubernetes
 * injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT`, `<SERVICE>_PORT_<n>_TCP...` for every
 * Service of the namespace (enableServiceLinks defaults to true), so a Service named
 * `transmitter` gives every pod TRANSMITTER_SERVICE_HOST, TRANSMITTER_PORT, ... and the emitter
 * then refuses to start (src/config/load.ts refuseUnknownVariables). The real CLI process.
 */

const SERVICE_LINKS = {
  TRANSMITTER_SERVICE_HOST: '10.96.12.34',
  TRANSMITTER_SERVICE_PORT: '8080',
  TRANSMITTER_SERVICE_PORT_HTTP: '8080',
  TRANSMITTER_PORT: 'tcp://10.96.12.34:8080',
  TRANSMITTER_PORT_8080_TCP: 'tcp://10.96.12.34:8080',
  TRANSMITTER_PORT_8080_TCP_PROTO: 'tcp',
  TRANSMITTER_PORT_8080_TCP_PORT: '8080',
  TRANSMITTER_PORT_8080_TCP_ADDR: '10.96.12.34',
};

describe('attack: the unknown-variable refusal', () => {
  // HOLE: fails (exit 2, "TRANSMITTER_PORT: is not a known variable").
  it("a Kubernetes Service named 'transmitter' in the namespace does not stop the emitter", async () => {
    const sink = await startSink();
    const spool = await tempDir('attack-k8s-links');
    try {
      const env = { ...testEnv({ sinkUrl: sink.url, spoolDir: spool.path }), ...SERVICE_LINKS };
      const result = await runCli(env, ['spool', 'stats']);
      expect(result.stderr).not.toMatch(/is not a known variable/);
    } finally {
      await spool.remove();
      await sink.close();
    }
  });

  // Regression (passes): a real typo next to them is still refused, naming it.
  it('a typo is still refused', async () => {
    const spool = await tempDir('attack-k8s-typo');
    try {
      const env = {
        ...testEnv({ sinkUrl: 'http://127.0.0.1:9', spoolDir: spool.path }),
        TRANSMITTER_BATCHSIZE: '5',
      };
      const result = await runCli(env, ['spool', 'stats']);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/TRANSMITTER_BATCHSIZE: is not a known variable/);
    } finally {
      await spool.remove();
    }
  });
});
