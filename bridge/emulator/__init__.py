"""A SIM5360 on a pseudo-terminal whose internet stacks are real clients."""
