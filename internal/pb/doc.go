// Package pb holds the protobuf messages generated from gateway.proto: the
// records actors keep in Pebble and the messages they exchange, one schema
// for both so a cluster can move actors between nodes unchanged. Generated
// code; edit gateway.proto and run `make proto`. A leaf: imports nothing of
// ours.
package pb
