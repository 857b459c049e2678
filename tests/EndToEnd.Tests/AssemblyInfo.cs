// Every test builds its own lab with unique namespace names, so the tests could run concurrently;
// they run one at a time anyway because throughput and timer-driven recovery on this 2-core machine
// would otherwise depend on what the other tests happen to be doing. Each test bounds its own time
// (Lab's budget), since xunit 2 only enforces Fact.Timeout when parallelization is on.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
