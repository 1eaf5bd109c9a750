package transport

// DefaultMaxResponseHeaderBytes is the sockets backend's bound on a
// response's headers when SocketsConfig.MaxResponseHeaderBytes is zero.
const DefaultMaxResponseHeaderBytes = defaultMaxResponseHeaderBytes
