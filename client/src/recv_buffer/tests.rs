use super::*;
use crate::test_frames;

/// Feeds `stream` to a fresh buffer at most `chunk_bytes` per read, the way the reader does
/// (drain whole frames, then read into `unfilled`), and returns the frames that came out.
fn frames_of(stream: &[u8], chunk_bytes: usize) -> Result<Vec<Bytes>, FrameError> {
    let mut buffer = RecvBuffer::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        while let Some(frame) = buffer.next_frame()? {
            frames.push(frame);
        }
        if rest.is_empty() {
            return Ok(frames);
        }
        let space = buffer.unfilled();
        assert!(!space.is_empty(), "the buffer offered no space to read into");
        let read_bytes = space.len().min(chunk_bytes).min(rest.len());
        space[..read_bytes].copy_from_slice(&rest[..read_bytes]);
        buffer.filled(read_bytes);
        assert!(buffer.capacity_bytes() <= FRAME_BYTES_MAX);
        rest = &rest[read_bytes..];
    }
}

/// Small frames with a frame larger than the initial buffer among them, so that growing
/// happens behind a partial frame at an arbitrary offset.
fn mixed_frames() -> Vec<Vec<u8>> {
    let large = vec![0xa5; RECV_BUFFER_BYTES_INITIAL + 1000];
    vec![
        test_frames::shard_iterator(1, "iterator-1"),
        test_frames::error(2, sluice_model::ErrorKind::ResourceNotFound, "no such stream"),
        test_frames::subscription_event(3, &[(1, b"a".as_slice()), (2, large.as_slice())]),
        test_frames::shard_iterator(4, "iterator-4"),
        test_frames::subscription_end(3),
    ]
}

#[test]
fn frames_come_out_whole_however_the_stream_is_cut() {
    let frames = mixed_frames();
    let stream = frames.concat();
    for chunk_bytes in [1, 2, 3, 4, 5, 7, 64, 1000, 4096, RECV_BUFFER_BYTES_INITIAL, stream.len()] {
        let actual = frames_of(&stream, chunk_bytes).unwrap();
        assert_eq!(actual.len(), frames.len(), "chunk size {chunk_bytes}");
        for (actual, expected) in actual.iter().zip(&frames) {
            assert_eq!(actual.as_ref(), expected.as_slice(), "chunk size {chunk_bytes}");
        }
    }
}

#[test]
fn an_incomplete_frame_stays_buffered() {
    let frame = test_frames::shard_iterator(1, "iterator-1");
    for cut in 0..frame.len() {
        let mut buffer = RecvBuffer::new();
        buffer.unfilled()[..cut].copy_from_slice(&frame[..cut]);
        buffer.filled(cut);
        assert_eq!(buffer.next_frame(), Ok(None), "cut at {cut}");
        assert_eq!(buffer.buffered_bytes(), cut);
    }
}

#[test]
fn a_zero_length_prefix_is_an_error() {
    let mut stream = test_frames::shard_iterator(1, "iterator-1");
    stream.extend_from_slice(&[0, 0, 0, 0, 0xff]);
    assert_eq!(frames_of(&stream, 3), Err(FrameError::BodyEmpty));
}

#[test]
fn an_oversized_prefix_is_an_error_before_the_buffer_grows() {
    let body_bytes = (FRAME_BYTES_MAX - FRAME_PREFIX_BYTES + 1) as u32;
    let mut buffer = RecvBuffer::new();
    buffer.unfilled()[..4].copy_from_slice(&body_bytes.to_le_bytes());
    buffer.filled(4);
    assert!(matches!(buffer.next_frame(), Err(FrameError::TooLarge { .. })));
    assert_eq!(buffer.capacity_bytes(), RECV_BUFFER_BYTES_INITIAL);

    let mut buffer = RecvBuffer::new();
    buffer.unfilled()[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    buffer.filled(4);
    assert!(matches!(buffer.next_frame(), Err(FrameError::TooLarge { .. })));
}

#[test]
fn the_buffer_grows_to_the_largest_frame_and_no_further_then_shrinks() {
    // The framing does not look inside the body, so a largest-possible frame of zeros will do.
    let body_bytes = FRAME_BYTES_MAX - FRAME_PREFIX_BYTES;
    let mut buffer = RecvBuffer::new();
    buffer.unfilled()[..4].copy_from_slice(&(body_bytes as u32).to_le_bytes());
    buffer.filled(4);
    let mut left_bytes = body_bytes;
    while left_bytes > 0 {
        assert_eq!(buffer.next_frame(), Ok(None));
        let space = buffer.unfilled().len();
        assert_eq!(space, left_bytes, "the space offered is exactly the rest of the frame");
        assert_eq!(buffer.capacity_bytes(), FRAME_BYTES_MAX);
        let read_bytes = space.min(3 * 1024 * 1024 + 1);
        buffer.filled(read_bytes);
        left_bytes -= read_bytes;
    }
    let frame = buffer.next_frame().unwrap().expect("a whole frame");
    assert_eq!(frame.len(), FRAME_BYTES_MAX);
    assert_eq!(buffer.buffered_bytes(), 0);
    assert_eq!(buffer.capacity_bytes(), RECV_BUFFER_BYTES_INITIAL, "an empty large buffer is given back");
}

#[test]
fn a_large_buffer_is_given_back_only_once_it_is_empty() {
    let large = test_frames::subscription_event(1, &[(1, vec![7; 2 * RECV_BUFFER_BYTES_RETAINED_MAX].as_slice())]);
    let small = test_frames::shard_iterator(2, "iterator-2");
    // A buffer left large by an earlier frame receives a large frame and the start of the next
    // in one read.
    let mut buffer = RecvBuffer { bytes: vec![0; 2 * large.len()], start: 0, end: 0 };
    let stream = [large.as_slice(), &small[..5]].concat();
    buffer.unfilled()[..stream.len()].copy_from_slice(&stream);
    buffer.filled(stream.len());
    assert_eq!(buffer.next_frame().unwrap().as_deref(), Some(large.as_slice()));
    assert_eq!(buffer.next_frame(), Ok(None));
    assert_eq!(buffer.buffered_bytes(), 5);
    assert_eq!(buffer.capacity_bytes(), 2 * large.len(), "kept while a partial frame is in it");

    buffer.unfilled()[..small.len() - 5].copy_from_slice(&small[5..]);
    buffer.filled(small.len() - 5);
    assert_eq!(buffer.next_frame().unwrap().as_deref(), Some(small.as_slice()));
    assert_eq!(buffer.capacity_bytes(), RECV_BUFFER_BYTES_INITIAL);
}
