"""TLS assessment: posture's own handshakes, many small jobs capped per host, assembled into one
`TlsEndpoint` per host:port."""
