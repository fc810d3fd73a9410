// Package cluster places actors across gateway nodes. It owns node
// membership: it implements protoactor-go's cluster.ClusterProvider on
// hashicorp/memberlist. Each node gossips its protoactor member id, remote
// address (host, port) and actor kinds as memberlist node metadata (JSON, at
// most 512 bytes); the [Provider] turns the alive node set into protoactor
// members and publishes it with MemberList.UpdateClusterTopology, so that
// protoactor's identity lookup (disthash) places every end-user and platform
// grain on exactly one live node.
//
// What is here today is membership. The cluster implementation of
// actors.Directory, the revocation broadcast and wallet leases of design.md
// "Cluster" build on it. Dependencies point down: this package may import
// actors, never the reverse — actors, edge and persistence never import
// cluster; cmd wires it.
//
// # Concurrency
//
// memberlist calls the Provider's delegate and event methods from its own
// goroutines. They never block and never publish: they only set a
// one-slot "membership changed" signal. One publisher goroutine per started
// Provider owns publication: after a signal it waits [Config.Debounce] to
// gather the rest of the burst, then reads memberlist's alive set and
// publishes it, so topologies reach protoactor one at a time, in order, at
// most once per Debounce. [Provider.Shutdown] stops that goroutine and waits
// for it; after Shutdown returns nothing more is published.
//
// Provider has one lock, mu; it is never held while calling memberlist or
// protoactor.
package cluster
