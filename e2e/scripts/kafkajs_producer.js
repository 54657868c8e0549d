// Produce COUNT records with acks=all to partition 0 of TOPIC with kafkajs (idempotent), one
// send at a time, surviving broker failures by the client's own retries. Values are
// `kafkajs-<i>` with i zero-padded to 5 digits.
//
// Usage: node kafkajs_producer.js BOOTSTRAP TOPIC COUNT
// Prints `kafkajs acked=N failed=M` at the end; exits non-zero if any send failed.
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, countText] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({
    clientId: 'strom-e2e-kafkajs',
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, metadataMaxAge: 1000 });
  await producer.connect();
  let acked = 0;
  let failed = 0;
  for (let i = 0; i < count; i++) {
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: [{ partition: 0, value: `kafkajs-${String(i).padStart(5, '0')}` }],
      });
      acked++;
    } catch (error) {
      console.error(`send failed: ${error}`);
      failed++;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await producer.disconnect();
  console.log(`kafkajs acked=${acked} failed=${failed}`);
  process.exit(failed === 0 && acked === count ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
