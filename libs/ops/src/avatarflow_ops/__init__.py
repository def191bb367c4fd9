"""avatarflow's operations commands (``avatarctl-ops``; ``avatarctl`` offers the same ones).

A lean package on purpose: it depends on the contracts, the runtime and the Kafka client only, so it
installs (and runs) where the services' ML stack is absent: an operator's laptop, a CI job, a
Kubernetes Job replaying dead letters.
"""
