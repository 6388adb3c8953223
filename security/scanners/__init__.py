"""One module per tool of `make scan` (security/scanner.py runs them and applies the gate).

hadolint   every Dockerfile
checkov    dockerfile, kubernetes (rendered manifests), github_actions and secrets frameworks
compose    security/compose_rules.py on Compose and Swarm stack files
bandit     the Python of app/src, components, policy, security and the program's root
render     not a scanner: renders the manifests the others scan, as `make render` does
"""
