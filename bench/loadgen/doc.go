// Package loadgen is the benchmark's HTTP load generator: open-loop at a fixed
// request rate and closed-loop over N connections, on fasthttp's HostClient,
// recording into HDR histograms in microseconds.
//
// # Measurement
//
// Open-loop runs ([Open]) give every request an intended send time,
// start + i/rate, and measure latency from that time, not from the moment
// the request was actually written. When the server stalls, requests that
// should have been sent during the stall wait for a free worker, and their
// wait is part of their latency: a slow server cannot hide its latency by
// slowing the generator down (no coordinated omission). The service time
// (from the actual send) and the send lag (actual minus intended) are
// recorded separately so a report can show both.
//
// Closed-loop runs ([Closed]) keep N connections busy, each sending its next
// request as soon as the previous one completes; they measure saturation
// throughput. Their latency is service time and is only meaningful next to
// the throughput it was measured at.
//
// With [Config.Stream] set, responses are read as server-sent events: the
// time to the first "data:" event, the gaps between events and the event
// count are recorded besides the whole-response latency.
//
// # Client choice
//
// Each run uses one [fasthttp.HostClient]: the target is a single host, so
// fasthttp.Client's per-host map lookup and lock buy nothing, and
// PipelineClient would put several requests on one connection at once, which
// is not how the gateway's clients talk to it and would blur per-request
// latency (head-of-line blocking). Workers reuse one Request and Response each,
// so the steady state allocates nothing per request.
//
// # Safety and bounds
//
// Targets must be loopback addresses (127.0.0.0/8, ::1 or "localhost"); any
// other host is refused before a connection is made, and the dialer checks
// again. Every run is bounded by its duration (and optionally a request
// count) and stops by itself; cancelling the context stops it early.
//
// # Concurrency
//
// [Open] and [Closed] are synchronous: they start their workers, wait for all
// of them and return. Workers record into a small number of mutex-guarded
// shards that are merged at the end, so histograms (which are not safe for
// concurrent use) are never shared without a lock.
//
// This package imports nothing of the gateway's; it must stay usable against
// any loopback HTTP server.
package loadgen
