// A CommonJS program (a fresh `npm init -y` project, or any .cjs file): batch-emitter is ESM-only,
// so load it with a dynamic import() inside an async function (CommonJS has no top-level await).
async function main() {
  const { createEmitter } = await import('batch-emitter');
  const emitter = createEmitter({
    destinationUrl: process.env.DESTINATION_URL ?? 'https://ingest.example.com/v1/batch',
    spoolDir: process.env.SPOOL_DIR ?? './spool',
    allowInsecureHttp: process.env.ALLOW_INSECURE_HTTP === 'true',
  });
  await emitter.start();
  const added = ['started', 'working', 'finished'].map((step) => emitter.add('job.step', { step }));
  await emitter.flush();
  await Promise.all(added);
  await emitter.wait();
  await emitter.close();
  console.log(`${added.length} items delivered`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
