package dns

// Listen binds UDP and TCP at one address, for the tests' fake upstream
// resolver.
var Listen = listen
