// Transactions with kafkajs: one committed and one aborted `producer.transaction()` on
// partition 0 of TOPIC, then a read_committed consumer (kafkajs reads committed by default)
// must see the committed records only.
//
// Usage: node kafkajs_transactions.js BOOTSTRAP TOPIC
// Prints `kafkajs committed=N aborted_seen=M` and exits non-zero unless N=3 and M=0.
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const kafka = new Kafka({
    clientId: 'strom-e2e-kafkajs-txn',
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  const producer = kafka.producer({
    transactionalId: 'kafkajs-txn',
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const committed = await producer.transaction();
  await committed.send({
    topic,
    messages: ['c0', 'c1', 'c2'].map((value) => ({ partition: 0, value })),
  });
  await committed.commit();
  const aborted = await producer.transaction();
  await aborted.send({
    topic,
    messages: ['a0', 'a1'].map((value) => ({ partition: 0, value })),
  });
  await aborted.abort();
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: 'kafkajs-txn-reader', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(message.value.toString());
    },
  });
  const deadline = Date.now() + 30000;
  while (seen.length < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // Anything aborted would have arrived with or right after the committed records.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await consumer.disconnect();
  const committedSeen = seen.filter((v) => v.startsWith('c')).length;
  const abortedSeen = seen.filter((v) => v.startsWith('a')).length;
  const inOrder = seen.join(',') === 'c0,c1,c2';
  console.log(`kafkajs committed=${committedSeen} aborted_seen=${abortedSeen} in_order=${inOrder}`);
  process.exit(committedSeen === 3 && abortedSeen === 0 && inOrder ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
