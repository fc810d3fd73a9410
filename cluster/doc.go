// Package cluster runs the gateway as a cluster of nodes: any node serves
// any request, and each platform and end-user actor runs on exactly one
// live node at a time (README "Cluster").
//
//   - Membership: [Provider] implements protoactor-go's
//     cluster.ClusterProvider on hashicorp/memberlist. Each node gossips its
//     protoactor member id, remote address and kinds as node metadata
//     (JSON, at most 512 bytes) and publishes the alive set with
//     MemberList.UpdateClusterTopology. Gossip is sealed with the cluster
//     key (memberlist keyring).
//   - Placement: [Lookup] is our identity lookup on protoactor's
//     IdentityLookup interface: rendezvous hashing over the published
//     member set (not disthash, whose table is swapped without a lock).
//   - [Node] is one node: the actor system with the remote (gRPC, mutual
//     TLS pinned to a key derived from the cluster key; tls.go), the
//     cluster, the lookup, and the cluster implementation of
//     actors.Directory: local short-circuit for actors this node owns,
//     one remote round trip otherwise. Its holder actor (one per node)
//     activates actors for other nodes, surrenders an actor's records to
//     its next owner, takes records handed over at a graceful leave, and
//     answers API key lookups. [Node.MemberAddresses] and [Node.System]
//     let other packages reach a named actor on every member.
//   - [Shared] keeps the records that belong to a platform rather than to
//     one actor (webhook endpoints, skills, OAuth records, dashboard
//     accounts) in the cluster's Postgres, the same for every node, and
//     carries change announcements to the nodes that cache them
//     (shared.go, services.go).
//   - [Peers] (peers.go) fans queries out and broadcasts; it bounds each
//     member to a short timeout and skips a member that stopped answering
//     until a background probe gets an answer (liveness.go).
//   - Crash take-over (takeover.go): with [NodeConfig.Takeover], an account
//     whose owner crashed activates provisionally from the newest of the
//     live copies and the Postgres snapshot, on a bounded credit
//     (actors.Env.Provision); a sweeper merges the crashed node's tail once
//     it returns, or gives the hold back once an operator declares it lost
//     (persistence/postgres.Registry records nodes, take-overs, tails).
//
// Dependencies point down: this package imports actors (it implements
// what actors defines: Directory, the cluster hooks of Env, the auth
// resolver), never the reverse — actors, edge and persistence never import
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
// protoactor. [Lookup] states its own rules (an immutable view behind an
// atomic pointer, one writer). Node's rebalance runs on its own goroutine
// after each topology change, one at a time.
package cluster
