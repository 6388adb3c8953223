"""Supply-chain and security gates: the vulnerability gate (security.gate) and the offline scan (security/scan)."""
