//! The process allocator: mimalloc, for Rust and, through its `override` feature, for the C
//! libraries too (librdkafka, ONNX Runtime), since they call `malloc` and `free` directly.
//!
//! Why: librdkafka copies every produced record (payload and header list) on the sink thread
//! and frees it on the thread that serves delivery reports. glibc's allocator handles frees from
//! another thread through locked arenas, and perf of `bench_e2e --runs b` put `_int_malloc` at
//! 35% of the sink thread and `_int_free` ahead of everything else on the delivery thread.
//! mimalloc frees cross-thread into per-page lists without a lock. Alternating builds in one
//! sitting (BENCHMARKS.md, "Acted on (2026-11-26, third pass)"), the whole pipeline on the
//! MockCluster went from about 340k to 460k events/s, and its CPU from 2.55 to 1.6 s per 500k
//! events; the rdkafka passthrough is in this binary too, so the comparison with it stays like
//! for like.
//!
//! Which mimalloc: version 2 (`v2`), without its `madvise(MADV_HUGEPAGE)` (`no_thp`). Version 3
//! and huge pages both raised RSS (the backpressure test's peak: 234 MiB with huge pages, 186
//! without, 159 with glibc; its bound is 256) for no throughput that stood out of the noise.
//!
//! Every binary that links this library (driftline, the benchmarks, the tests) gets it, through
//! the default feature `mimalloc`; the fuzz targets turn it off (their sanitizer owns malloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
