//! The reader's half of the connection, without a socket: frames are routed to waiters
//! registered by hand, and `read_loop` reads from an in-memory byte stream.

use std::collections::VecDeque;

use sluice_model::{ErrorKind, GetShardIteratorOutput, KinesisError, SequenceNumber};
use sluice_protocol::FrameError;

use super::*;

use crate::test_frames;

type CallReceiver = oneshot::Receiver<Result<ResponseMessage, ClientError>>;

fn call(shared: &Shared, correlation_id: u64) -> CallReceiver {
    let permit = shared.in_flight.try_acquire_static_permit(1).expect("a permit");
    let (reply, receiver) = oneshot::channel();
    shared.waiters.borrow_mut().insert(correlation_id, Waiter::Call(CallWaiter { reply, _permit: permit }));
    receiver
}

struct SubscriptionEnds {
    accepted: oneshot::Receiver<Result<(), ClientError>>,
    items: mpsc::Receiver<SubscriptionItem>,
}

fn subscription(shared: &Shared, correlation_id: u64) -> SubscriptionEnds {
    let permit = shared.in_flight.try_acquire_static_permit(1).expect("a permit");
    let (accepted_sender, accepted) = oneshot::channel();
    let (items_sender, items) = mpsc::channel(SUBSCRIPTION_EVENTS_QUEUED_MAX - 1);
    let waiter = SubscriptionWaiter {
        accepted: Some(accepted_sender),
        items: Rc::new(RefCell::new(items_sender)),
        failed: false,
        _permit: permit,
    };
    shared.waiters.borrow_mut().insert(correlation_id, Waiter::Subscription(waiter));
    SubscriptionEnds { accepted, items }
}

fn route(shared: &Shared, frame: Vec<u8>) -> Result<Option<Delivery>, ConnectionError> {
    shared.route(&Bytes::from(frame))
}

/// The reply a call received, which must have arrived.
fn received(receiver: &mut CallReceiver) -> Result<Response, ClientError> {
    match receiver.try_recv().expect("sender alive").expect("a reply has arrived")? {
        ResponseMessage::Response(response) => Ok(response),
        other => panic!("not a Kinesis response: {other:?}"),
    }
}

fn iterator_of(reply: Result<Response, ClientError>) -> String {
    match reply {
        Ok(Response::GetShardIterator(GetShardIteratorOutput { shard_iterator: Some(iterator) })) => iterator,
        other => panic!("{other:?}"),
    }
}

fn in_flight(shared: &Shared) -> usize {
    REQUESTS_IN_FLIGHT_MAX - shared.in_flight.available() as usize
}

#[test]
fn responses_in_any_order_reach_their_own_requests() {
    let shared = Shared::new();
    let mut receivers: Vec<_> = (1..=3).map(|id| call(&shared, id)).collect();
    assert_eq!(in_flight(&shared), 3);
    for id in [3, 1, 2] {
        assert!(route(&shared, test_frames::shard_iterator(id, &format!("iterator-{id}"))).unwrap().is_none());
    }
    for (id, receiver) in (1..=3).zip(&mut receivers) {
        assert_eq!(iterator_of(received(receiver)), format!("iterator-{id}"));
    }
    assert!(shared.waiters.borrow().is_empty());
    assert_eq!(in_flight(&shared), 0, "permits are returned with the final response");
}

#[test]
fn an_error_response_becomes_a_service_error() {
    let shared = Shared::new();
    let mut receiver = call(&shared, 5);
    route(&shared, test_frames::error(5, ErrorKind::ResourceNotFound, "Stream orders not found")).unwrap();
    let Err(ClientError::Service(KinesisError { kind, message })) = received(&mut receiver) else { panic!() };
    assert_eq!(kind, ErrorKind::ResourceNotFound);
    assert_eq!(kind.exception_name(), "ResourceNotFoundException");
    assert_eq!(message, "Stream orders not found");

    // A code from a newer server is the least specific failure.
    let mut receiver = call(&shared, 6);
    route(&shared, test_frames::unknown_error(6, 99, "new")).unwrap();
    let Err(ClientError::Service(KinesisError { kind, .. })) = received(&mut receiver) else { panic!() };
    assert_eq!((kind, kind.exception_name()), (ErrorKind::InternalFailure, "InternalFailure"));
}

#[test]
fn a_caller_that_stopped_waiting_does_not_disturb_the_connection() {
    let shared = Shared::new();
    drop(call(&shared, 1));
    let mut receiver = call(&shared, 2);
    route(&shared, test_frames::shard_iterator(1, "late")).unwrap();
    route(&shared, test_frames::shard_iterator(2, "on time")).unwrap();
    assert_eq!(iterator_of(received(&mut receiver)), "on time");
    assert_eq!(in_flight(&shared), 0);
}

#[test]
fn an_unknown_body_fails_only_its_request() {
    let shared = Shared::new();
    let mut receiver = call(&shared, 1);
    route(&shared, test_frames::unknown_body(1, 200)).unwrap();
    let Err(error @ ClientError::Decode(_)) = received(&mut receiver) else { panic!() };
    assert_eq!(error.to_string(), "the server sent a response of body type 200, which this build does not know");
}

#[test]
fn frames_that_break_the_protocol_break_the_connection() {
    let shared = Shared::new();
    let error = route(&shared, test_frames::shard_iterator(77, "nobody asked")).unwrap_err();
    assert!(matches!(error, ConnectionError::Protocol { correlation_id: 77, .. }), "{error}");

    let error = route(&shared, test_frames::error(0, ErrorKind::Serialization, "frame too large")).unwrap_err();
    let ConnectionError::Rejected(KinesisError { kind, message }) = &error else { panic!("{error}") };
    assert_eq!(
        (*kind, kind.exception_name(), message.as_str()),
        (ErrorKind::Serialization, "SerializationException", "frame too large")
    );
    assert_eq!(error.to_string(), "the server rejected the connection: SerializationException: frame too large");

    let error = route(&shared, test_frames::shard_iterator(0, "no error")).unwrap_err();
    assert!(matches!(error, ConnectionError::Protocol { correlation_id: 0, .. }), "{error}");
}

#[test]
fn garbage_after_a_valid_prefix_is_a_frame_error() {
    let shared = Shared::new();
    let mut frame = test_frames::shard_iterator(1, "iterator");
    let _receiver = call(&shared, 1);
    // Point the root offset outside the frame.
    frame[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(route(&shared, frame), Err(ConnectionError::Frame(FrameError::Invalid { .. }))));
    let mut junk = vec![0xee; 64];
    junk[..4].copy_from_slice(&60u32.to_le_bytes());
    assert!(matches!(route(&shared, junk), Err(ConnectionError::Frame(_))));
}

#[test]
fn a_subscription_is_accepted_then_streams_then_ends() {
    let shared = Shared::new();
    let mut ends = subscription(&shared, 9);
    assert!(route(&shared, test_frames::subscription_accepted(9)).unwrap().is_none());
    assert!(matches!(ends.accepted.try_recv(), Ok(Some(Ok(())))));

    let delivery =
        route(&shared, test_frames::subscription_event(9, &[(1, b"a".as_slice())])).unwrap().expect("an event");
    let SubscriptionItem::Event(event) = &delivery.item else { panic!("{:?}", delivery.item) };
    assert_eq!(event.continuation_sequence_number, SequenceNumber::new(1));
    assert_eq!(in_flight(&shared), 1, "a live subscription holds its permit");

    let delivery = route(&shared, test_frames::subscription_end(9)).unwrap().expect("the end");
    assert!(matches!(delivery.item, SubscriptionItem::End));
    assert!(shared.waiters.borrow().is_empty(), "the id is free after the end");
    assert_eq!(in_flight(&shared), 0);
    drop(ends.items);
}

#[test]
fn a_refused_subscription_frees_its_id() {
    let shared = Shared::new();
    let mut ends = subscription(&shared, 3);
    route(&shared, test_frames::error(3, ErrorKind::ResourceInUse, "resubscribed within 5 s")).unwrap();
    let Ok(Some(Err(ClientError::Service(error)))) = ends.accepted.try_recv() else { panic!() };
    assert_eq!(error.kind, ErrorKind::ResourceInUse);
    assert!(shared.waiters.borrow().is_empty());
}

#[test]
fn an_error_inside_the_stream_is_its_last_item() {
    let shared = Shared::new();
    let _ends = subscription(&shared, 3);
    route(&shared, test_frames::subscription_accepted(3)).unwrap();
    let delivery = route(&shared, test_frames::error(3, ErrorKind::InternalFailure, "disk")).unwrap().unwrap();
    assert!(matches!(delivery.item, SubscriptionItem::Error(ClientError::Service(_))));
    assert!(shared.waiters.borrow().is_empty());
}

#[test]
fn an_event_before_acceptance_fails_the_subscription_but_not_the_connection() {
    let shared = Shared::new();
    let mut ends = subscription(&shared, 4);
    assert!(route(&shared, test_frames::subscription_event(4, &[])).unwrap().is_none());
    let Ok(Some(Err(error))) = ends.accepted.try_recv() else { panic!() };
    assert_eq!(error.to_string(), "the server answered SubscribeToShard with a SubscribeToShardEvent");
    // Later frames under the id are dropped until the final one frees it.
    assert!(route(&shared, test_frames::subscription_event(4, &[])).unwrap().is_none());
    assert_eq!(shared.waiters.borrow().len(), 1);
    assert!(route(&shared, test_frames::subscription_end(4)).unwrap().is_none());
    assert!(shared.waiters.borrow().is_empty());
}

#[test]
fn a_connection_failure_reaches_every_waiter_and_later_requests() {
    let shared = Shared::new();
    let mut waiting_call = call(&shared, 1);
    let mut opening = subscription(&shared, 2);
    let mut streaming = subscription(&shared, 3);
    route(&shared, test_frames::subscription_accepted(3)).unwrap();

    shared.fail(ConnectionError::Closed);
    shared.fail(ConnectionError::WriteCancelled); // The first failure wins.

    assert!(matches!(received(&mut waiting_call), Err(ClientError::Connection(ConnectionError::Closed))));
    assert!(matches!(opening.accepted.try_recv(), Ok(Some(Err(ClientError::Connection(ConnectionError::Closed))))));
    // The streaming subscriber's queue ends; `Subscription::next` then reports `failure`.
    assert!(matches!(streaming.items.try_recv(), Err(mpsc::TryRecvError::Closed)));
    assert!(matches!(shared.failure_or_closed(), ConnectionError::Closed));
    assert!(shared.in_flight.try_acquire_static_permit(1).is_err(), "no new request can start");
    assert!(shared.waiters.borrow().is_empty());
}

// ---------------------------------------------------------------------------------------
// read_loop
// ---------------------------------------------------------------------------------------

/// An in-memory byte stream that returns at most `chunk_bytes` per read, then end of stream.
struct ChunkedReader {
    bytes: VecDeque<u8>,
    chunk_bytes: usize,
}

impl AsyncRead for ChunkedReader {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let read_bytes = buf.len().min(self.chunk_bytes).min(self.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(self.bytes.drain(..read_bytes)) {
            *slot = byte;
        }
        Poll::Ready(Ok(read_bytes))
    }
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    glommio::LocalExecutorBuilder::default().make().expect("an executor").run(future)
}

#[test]
fn the_reader_routes_pipelined_frames_cut_anywhere() {
    let stream: Vec<u8> =
        [3, 1, 2].iter().flat_map(|id| test_frames::shard_iterator(*id, &format!("it-{id}"))).collect();
    for chunk_bytes in [1, 3, 7, stream.len()] {
        let shared = Shared::new();
        let mut receivers: Vec<_> = (1..=3).map(|id| call(&shared, id)).collect();
        let reader = ChunkedReader { bytes: stream.iter().copied().collect(), chunk_bytes };
        let error = run(read_loop(&shared, reader));
        assert!(matches!(error, ConnectionError::Closed), "{error}");
        for (id, receiver) in (1..=3).zip(&mut receivers) {
            assert_eq!(iterator_of(received(receiver)), format!("it-{id}"), "chunk size {chunk_bytes}");
        }
    }
}

#[test]
fn the_reader_reports_a_stream_cut_mid_frame_and_garbage() {
    let frame = test_frames::shard_iterator(1, "it");
    let shared = Shared::new();
    let _receiver = call(&shared, 1);
    let reader = ChunkedReader { bytes: frame[..frame.len() - 1].iter().copied().collect(), chunk_bytes: 5 };
    let error = run(read_loop(&shared, reader));
    assert!(matches!(error, ConnectionError::ClosedMidFrame { buffered_bytes } if buffered_bytes == frame.len() - 1));

    let garbage: VecDeque<u8> = [0, 0, 0, 0, 1, 2, 3].into_iter().collect();
    let error = run(read_loop(&shared, ChunkedReader { bytes: garbage, chunk_bytes: 2 }));
    assert!(matches!(error, ConnectionError::Frame(FrameError::BodyEmpty)), "{error}");

    let oversized: VecDeque<u8> = u32::MAX.to_le_bytes().into_iter().collect();
    let error = run(read_loop(&shared, ChunkedReader { bytes: oversized, chunk_bytes: 1 }));
    assert!(matches!(error, ConnectionError::Frame(FrameError::TooLarge { .. })), "{error}");
}

#[test]
fn a_slow_subscriber_pauses_the_reader_instead_of_growing_a_queue() {
    const EVENT_COUNT: usize = 3 * SUBSCRIPTION_EVENTS_QUEUED_MAX;
    let mut stream = test_frames::subscription_accepted(1);
    for index in 0..EVENT_COUNT {
        stream.extend(test_frames::subscription_event(1, &[(index as u128, b"data".as_slice())]));
    }
    stream.extend(test_frames::subscription_end(1));
    // A call answered after all the events: it has to wait for the subscriber too.
    stream.extend(test_frames::shard_iterator(2, "behind the events"));

    run(async move {
        let shared = Rc::new(Shared::new());
        let mut ends = subscription(&shared, 1);
        let mut receiver = call(&shared, 2);
        let reader = ChunkedReader { bytes: stream.into_iter().collect(), chunk_bytes: 1000 };
        let task = glommio::spawn_local({
            let shared = shared.clone();
            async move { read_loop(&shared, reader).await }
        });
        for _ in 0..100 {
            futures_lite::future::yield_now().await;
        }
        assert!(matches!(ends.accepted.try_recv(), Ok(Some(Ok(())))));
        assert!(matches!(receiver.try_recv(), Ok(None)), "the reader went past a full subscription queue");

        let mut sequence_numbers = Vec::new();
        loop {
            match ends.items.next().await.expect("the queue ends with End") {
                SubscriptionItem::Event(event) => sequence_numbers.push(event.continuation_sequence_number),
                SubscriptionItem::End => break,
                SubscriptionItem::Error(error) => panic!("{error}"),
            }
        }
        assert_eq!(
            sequence_numbers,
            (0..EVENT_COUNT).map(|index| SequenceNumber::new(index as u128)).collect::<Vec<_>>()
        );
        let error = task.await;
        assert!(matches!(error, ConnectionError::Closed), "{error}");
        assert_eq!(iterator_of(received(&mut receiver)), "behind the events");
    });
}

#[test]
fn a_dropped_subscriber_does_not_stall_the_reader() {
    let mut stream = test_frames::subscription_accepted(1);
    for _ in 0..3 * SUBSCRIPTION_EVENTS_QUEUED_MAX {
        stream.extend(test_frames::subscription_event(1, &[(1, b"data".as_slice())]));
    }
    stream.extend(test_frames::subscription_end(1));
    stream.extend(test_frames::shard_iterator(2, "after"));
    let shared = Shared::new();
    let ends = subscription(&shared, 1);
    drop(ends);
    let mut receiver = call(&shared, 2);
    let reader = ChunkedReader { bytes: stream.into_iter().collect(), chunk_bytes: 4096 };
    let error = run(read_loop(&shared, reader));
    assert!(matches!(error, ConnectionError::Closed), "{error}");
    assert_eq!(iterator_of(received(&mut receiver)), "after");
    assert!(shared.waiters.borrow().is_empty());
}
