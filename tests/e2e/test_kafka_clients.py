"""The pinned broker works with both clients the project uses: confluent-kafka (hot
path, producers) and aiokafka (Faust's driver)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from deploy.kafka import kafka_version


def test_broker_is_the_pinned_version(kafka):
    metadata = AdminClient({"bootstrap.servers": kafka}).list_topics(timeout=10)
    assert metadata.brokers
    assert kafka_version().startswith("4.")


def test_confluent_kafka_idempotent_round_trip(kafka, topic):
    producer = Producer({"bootstrap.servers": kafka, "enable.idempotence": True, "acks": "all"})
    for i in range(50):
        producer.produce(topic, key=b"k%d" % (i % 5), value=b"v%d" % i)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values = set()
    for _ in range(60):
        for message in consumer.consume(100, timeout=0.5):
            assert message.error() is None
            values.add(message.value())
        if len(values) == 50:
            break
    consumer.commit(asynchronous=False)
    consumer.close()
    assert values == {b"v%d" % i for i in range(50)}


def test_aiokafka_group_consume_and_commit(kafka, topic):
    async def scenario() -> tuple[set[bytes], int]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
        await producer.start()
        try:
            for i in range(30):
                await producer.send_and_wait(topic, b"a%d" % i, key=b"k%d" % (i % 3))
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=f"aio-{topic}",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        got: set[bytes] = set()
        try:
            for _ in range(40):
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    got.update(m.value for m in messages)
                if len(got) == 30:
                    break
            await consumer.commit()
            committed = 0
            for tp in consumer.assignment():
                committed += await consumer.committed(tp) or 0
        finally:
            await consumer.stop()
        return got, committed

    got, committed = asyncio.run(scenario())
    assert got == {b"a%d" % i for i in range(30)}
    assert committed == 30
