package persistence

import "github.com/cockroachdb/pebble/v2/vfs"

// pebbleFS is Pebble's filesystem interface, named here so Config can carry
// an in-memory one in crash tests.
type pebbleFS = vfs.FS
