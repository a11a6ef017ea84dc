//! What the fleet view reads back outside the consumer group.
//!
//! - The reader (`kafka/reader.rs`): one reader serves every read of an instance, so a read
//!   must see exactly its own range, whatever earlier reads fetched and left unread (a fetch
//!   returns more than a read asks for). A read that skipped ahead would miss records. A long
//!   read goes on as long as records come.
//! - The progress look-up (`stages/drift/fleet_progress.rs`) reads the partials topic from its
//!   end: a take-over costs the last windows' records, not the fleet's history.
use std::time::Duration;

use driftline::kafka::reader::PartitionReader;
use driftline::stages::drift::fleet_progress::{read_progress, PROGRESS_TAIL_RECORDS};
use driftline_operators::drift::partial::{FleetRecord, PartitionProgress};
use driftline_tests::in_process::{demo_settings, embedded_broker};
use driftline_tests::produce_to_partition;
use rdkafka::Message;

/// `n` unkeyed records.
fn numbered(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| (String::new(), i.to_string().into_bytes()))
        .collect()
}

fn offsets(reader: &PartitionReader, topic: &str, partition: i32, from: i64, to: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    reader
        .read(topic, partition, from, to, |m| {
            assert_eq!(m.partition(), partition, "a record of another partition");
            seen.push(m.offset());
            Ok(())
        })
        .expect("read");
    seen
}

#[test]
fn each_read_sees_its_own_range() {
    let broker = embedded_broker(1, 2);
    broker.create_topic("t", 2).expect("topic");
    let b = broker.bootstrap_servers();
    produce_to_partition(b, "t", 0, &numbered(2_000));
    produce_to_partition(b, "t", 1, &numbered(2_000));
    let settings = demo_settings(b, "reader-test", &[]);
    let reader = PartitionReader::new(&settings, Duration::from_secs(20)).expect("reader");
    // Short reads leave most of a fetch unread; each is followed by reads that start earlier
    // or elsewhere, as the progress look-ups and replays of one instance follow each other.
    for round in 0..20i64 {
        let cut = 5 + round * 37;
        assert_eq!(
            offsets(&reader, "t", 0, cut, cut + 3),
            (cut..cut + 3).collect::<Vec<_>>(),
            "round {round}: a short read"
        );
        assert_eq!(
            offsets(&reader, "t", 0, 0, 2_000),
            (0..2_000).collect::<Vec<_>>(),
            "round {round}: the whole partition after a short read of it"
        );
        assert_eq!(
            offsets(&reader, "t", 1, cut, cut + 2),
            (cut..cut + 2).collect::<Vec<_>>(),
            "round {round}: a short read of the other partition"
        );
        assert_eq!(
            offsets(&reader, "t", 0, 1, 50),
            (1..50).collect::<Vec<_>>(),
            "round {round}: a read that starts before where the last one stopped"
        );
    }
}

/// A replay decodes and scores every record it reads, so a long window's replay takes a while
/// in all: the reader's timeout is for a read that gets no record, not for a long one.
#[test]
fn a_read_back_longer_than_the_timeout_goes_on_while_records_come() {
    let broker = embedded_broker(1, 1);
    broker.create_topic("t", 1).expect("topic");
    let b = broker.bootstrap_servers();
    produce_to_partition(b, "t", 0, &numbered(500));
    let settings = demo_settings(b, "reader-test", &[]);
    let timeout = Duration::from_millis(500);
    let reader = PartitionReader::new(&settings, timeout).expect("reader");
    let started = std::time::Instant::now();
    let mut seen = 0;
    reader
        .read("t", 0, 0, 500, |_| {
            // As scoring the record would.
            std::thread::sleep(Duration::from_millis(2));
            seen += 1;
            Ok(())
        })
        .expect("a read that takes longer than the timeout, with records coming");
    assert_eq!(seen, 500);
    assert!(started.elapsed() > 2 * timeout, "{:?}", started.elapsed());
    // Past the log's end there is nothing to wait for: the read stops there.
    let mut past_the_end = 0;
    reader
        .read("t", 0, 490, 600, |_| {
            past_the_end += 1;
            Ok(())
        })
        .expect("read to the end");
    assert_eq!(past_the_end, 10);
}

/// `(key, payload)` of a progress record of input partition `partition` through `through`.
fn progress(fleet: &str, partition: i32, through: u64) -> (String, Vec<u8>) {
    let p = PartitionProgress {
        schema_version: 1,
        fleet: fleet.into(),
        reference_id: "ref".into(),
        partition,
        through_pane: through,
        through_ms: ((through + 1) * 2000) as i64,
        next_offset: 0,
        instance: "test".into(),
    };
    let key = p.key();
    (
        key,
        serde_json::to_vec(&FleetRecord::Progress(p)).expect("json"),
    )
}

/// Records that are not progress: a partial's key with a small payload.
fn fillers(fleet: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| (format!("{fleet}|temperature|{i}|0"), b"{}".to_vec()))
        .collect()
}

#[test]
fn a_progress_look_up_reads_from_the_end_as_far_as_it_must() {
    let broker = embedded_broker(1, 2);
    let b = broker.bootstrap_servers();
    broker.create_topic("partials", 1).expect("topic");
    let fleet = "group/in";
    let tail = PROGRESS_TAIL_RECORDS as usize;
    // Oldest first: partition 3's only progress, a long history, partition 0's older and
    // partition 1's progress, another fleet's progress of partition 2, then partition 0's
    // newer progress near the end.
    let mut log = vec![progress(fleet, 3, 5)];
    log.extend(fillers(fleet, 3 * tail));
    log.extend([progress(fleet, 0, 10), progress(fleet, 1, 12)]);
    log.extend(fillers(fleet, tail / 2));
    log.push(progress("other/in", 2, 40));
    log.push(progress(fleet, 0, 11));
    log.extend(fillers(fleet, 10));
    produce_to_partition(b, "partials", 0, &log);
    let total = log.len() as i64;
    let settings = demo_settings(b, "progress-test", &[]);
    let reader = PartitionReader::new(&settings, Duration::from_secs(20)).expect("reader");
    let through = |latest: &std::collections::HashMap<i32, PartitionProgress>, p: i32| {
        latest.get(&p).map(|p| p.through_pane)
    };

    // Partitions being consumed have their progress near the end: one stretch is read.
    let (latest, read) = read_progress(&reader, "partials", 0, fleet, 1).expect("read");
    assert_eq!(read, PROGRESS_TAIL_RECORDS, "only the newest stretch");
    assert_eq!(
        (through(&latest, 0), through(&latest, 1)),
        (Some(11), Some(12))
    );
    assert_eq!(through(&latest, 2), None, "another fleet's progress");

    // An old progress record is found by reading further back, twice as far each time.
    let (latest, read) = read_progress(&reader, "partials", 0, fleet, 3).expect("read");
    assert_eq!(through(&latest, 3), Some(5));
    assert_eq!(read, total, "back to the log's start");

    // A partition nobody published: the whole log says so.
    let (latest, read) = read_progress(&reader, "partials", 0, fleet, 7).expect("read");
    assert_eq!((through(&latest, 7), read), (None, total));
    assert_eq!(
        (through(&latest, 0), through(&latest, 3)),
        (Some(11), Some(5)),
        "the latest of each, whichever stretch it came in"
    );
}
