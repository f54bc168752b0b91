"""A Test's hot state in Redis, one module per job; `keys` names every key.

- `keys`       the key layout (read it first) and what each hash holds
- `lifecycle`  marking a Test, deleting all of its keys, rollouts
- `decisions`  storing and counting a decision (decide.lua)
- `rewards`    the stored decisions rewards name, and counting rewards (reward.lua)
- `learned`    reading the sufficient statistics into arrays for the policy
- `reads`      counters, trails and the feature analysis for the read side
- `durable`    what checkpoints copy to the database, and the refill of a lost Test
               (restore.lua)
"""
