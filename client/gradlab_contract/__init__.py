"""gradlab's contract: what the SDK, the service, the worker and the training core agree on.

- `spec`: the job spec (JobSpec and its parts), validated the same way on every side;
- `models`: the API's request and response models, the job statuses and the records the
  training core reports (Snapshot, Histogram, Layer);
- `shapes`: the torch-free layer planner and the cost estimates derived from a spec;
- `architectures`: the plan of the resnet and sequential kinds (shapes, names, depth), which
  `shapes` uses and the training core builds from;
- `catalog`: a one-line description of every enum value of the spec.

It needs pydantic alone: neither httpx nor torch. The SDK (`gradlab_client`) re-exports it;
every server-side package imports it directly.
"""
