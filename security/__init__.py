"""Supply-chain and security gates: the vulnerability gate (security.gate) and the offline scan
(security/scan: security/scanner.py runs one module per tool from security/scanners/)."""
