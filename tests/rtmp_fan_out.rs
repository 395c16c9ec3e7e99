//! Fan-out: fifty readers of one stream all receive frames; a reader that stops reading does not
//! delay the others; a publisher that drops ends its readers cleanly.

mod common;

use common::daemon::{InProcess, Reader, publish, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn counts(readers: &[Reader]) -> Vec<u64> {
    readers.iter().map(Reader::frames).collect()
}

#[test]
fn fifty_readers_keep_pace_while_one_reader_is_stopped() {
    let daemon = InProcess::start("media.readerQueueBytes=262144", "");
    let mut publisher = publish(&daemon.url("fan"), 20);
    daemon.wait_live("fan", 0);

    // A reader that stops reading altogether: its process is frozen.
    let frozen = Reader::start(&daemon.url("fan"), 60, &[]);
    frozen.wait_frames(1);
    kill(Pid::from_raw(frozen.client.0.id() as i32), Signal::SIGSTOP).unwrap();

    let readers: Vec<Reader> = (0..50).map(|_| Reader::start(&daemon.url("fan"), 60, &[])).collect();
    daemon.wait_live("fan", 51);
    wait_for("every reader flowing", || counts(&readers).iter().all(|n| *n >= 15));
    let before = counts(&readers);
    wait_for("90 more frames at the first reader", || readers[0].frames() >= before[0] + 90);
    let gained: Vec<u64> = counts(&readers).iter().zip(&before).map(|(after, before)| after - before).collect();
    assert!(gained.iter().all(|g| *g >= 45), "every reader kept pace over the same window: {gained:?}");

    assert!(publisher.wait(), "publisher finished");
    for mut reader in readers {
        assert!(reader.client.wait(), "every reader ends cleanly when the publisher leaves");
    }
    wait_for("stream gone", || daemon.services.hub.live_streams().is_empty());
    kill(Pid::from_raw(frozen.client.0.id() as i32), Signal::SIGCONT).unwrap();
}
