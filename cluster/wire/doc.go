// Package wire holds the protobuf messages gateway nodes exchange between
// their holder actors (package cluster): remote activation and the
// hand-over of an actor's records when its ownership moves. Generated from
// wire.proto by `make proto`; the generated code is committed.
package wire
