"""The SimPy world: clients, the job service, the network and the fault timeline.

``sim.world.run`` is the entry point; one module a concept:
``rng`` (random streams), ``faults`` (what is wrong when), ``network`` (each message's fate),
``service`` (the serverless job service), ``client`` (the seed system's client flow),
``occ`` (the 2015 optimistic-concurrency experiment), ``events`` (light timers and wakes
on SimPy's queue), ``metrics`` (what is measured).
"""
