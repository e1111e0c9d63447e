package podnet

// RunIn runs fn in ns, as podnet runs nft and sysctl writes, for the tests
// that open sockets inside a namespace.
func RunIn(ns Netns, fn func() error) error { return ns.run(fn) }
