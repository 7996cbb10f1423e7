"""ringdp.torch: data-parallel PyTorch training (CPU) with ringdp averaging the gradients.

    import torch
    import ringdp.torch

    model = torch.nn.Sequential(...)
    optimizer = ringdp.torch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                                  model)
    for x, y in my_shard_of_the_batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()  # averaging starts here
        optimizer.step()                                            # waits, then steps

As in Horovod's DistributedOptimizer, the optimizer you pass is wrapped: the result is an
instance of its class (so that learning-rate schedulers and state_dict() work), whose
step() first waits for the averaged gradients. As in PyTorch's DistributedDataParallel,
rank 0's parameters and buffers are broadcast when it is built, gradients are averaged in
buckets while backward() runs (a hook on each parameter's gradient accumulator hands its
bucket to ringdp's GradientReducer, whose progress thread reduces it while autograd goes
on), and the gradients are views into one flat buffer, so that nothing is copied on the
way (torch tensors and numpy arrays share their memory).

Importing ringdp never imports torch; this module does.
"""

import time

import torch

import ringdp


def _check_tensor(tensor, what):
    """The checks ringdp's collectives need of a tensor, with a clear message."""
    if tensor.device.type != "cpu":
        raise TypeError(f"{what} is on {tensor.device}; ringdp.torch averages CPU tensors")
    if not tensor.is_contiguous():
        raise ValueError(f"{what} is not contiguous")


def broadcast_parameters(model, root=0, comm=None):
    """Copies rank `root`'s parameters and buffers of `model` (a torch.nn.Module) into every
    other rank's, in place. Collective; an unsupported tensor on any rank raises on every
    rank."""
    tensors = list(model.state_dict(keep_vars=True).items())
    with ringdp.agreed(comm):
        for name, tensor in tensors:
            _check_tensor(tensor, f"model tensor '{name}'")
    with torch.no_grad():
        for name, tensor in tensors:
            ringdp.broadcast(tensor.detach().numpy(), root=root, comm=comm)


def _adopt_gradient(p, view):
    """Makes p.grad the view into the flat buffer again when it is not (after
    zero_grad(set_to_none=True) on the model, or an assignment, autograd made a new tensor or
    left None): copies the gradient in (None: zeros), so that later steps copy nothing."""
    grad = p.grad
    if grad is not None and grad.data_ptr() == view.data_ptr():
        return
    if grad is not None:
        view.copy_(grad)
    else:
        view.zero_()
    p.grad = view


class _Distributed:
    """What DistributedOptimizer adds to the optimizer's class (see the module's doc).

    Attributes prefixed _ringdp_ to stay clear of the optimizer's own."""

    def __init__(self, params, model, bucket_bytes, algorithm, backward_passes_per_step,
                 broadcast, comm):
        super(self.__class__, self).__init__(params)
        self._ringdp_comm = comm
        self._ringdp_passes = backward_passes_per_step
        self._ringdp_synchronized = False
        self.wait_seconds = 0.0
        parameters = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        with ringdp.agreed(comm):
            if backward_passes_per_step < 1:
                raise ValueError("backward_passes_per_step must be at least 1")
            for name, p in parameters:
                _check_tensor(p, f"parameter '{name}'")
                if p.dtype != torch.float32:
                    raise TypeError(f"parameter '{name}' is {p.dtype}; ringdp.torch averages "
                                    "float32 gradients")
        if broadcast:
            broadcast_parameters(model, comm=comm)
        self._ringdp_layout(parameters, bucket_bytes or ringdp.default_bucket_bytes())
        self._ringdp_reducer = ringdp.GradientReducer(
            self._ringdp_buckets, op="avg", algorithm=algorithm, comm=comm)
        self._ringdp_hook(parameters)

    def _ringdp_layout(self, parameters, bucket_bytes):
        # One flat gradient buffer, parameters in reverse order of registration: backward
        # finishes the last layers first, so the buffer fills from the front and adjacent
        # buckets that complete together are reduced as one range, in place. Each
        # parameter's gradient is a view into it; its buckets are pieces of at most
        # bucket_bytes that never span two parameters (a bucket never waits for a
        # parameter that is not yet done), and the reducer fuses small adjacent ones.
        ordered = list(reversed(parameters))
        total = sum(p.numel() for _, p in ordered)
        self._ringdp_arena = torch.zeros(total, dtype=torch.float32)
        flat = self._ringdp_arena.numpy()
        per_bucket = max(1, bucket_bytes // 4)
        self._ringdp_buckets = []
        self._ringdp_slots = {}
        offset = 0
        for _, p in ordered:
            n = p.numel()
            view = self._ringdp_arena[offset:offset + n].view_as(p)
            if p.grad is not None:
                view.copy_(p.grad)
            p.grad = view
            first = len(self._ringdp_buckets)
            for start in range(offset, offset + n, per_bucket):
                self._ringdp_buckets.append(flat[start:min(start + per_bucket, offset + n)])
            self._ringdp_slots[p] = [view, range(first, len(self._ringdp_buckets)), 0]
            offset += n

    def _ringdp_hook(self, parameters):
        # The hook goes on each parameter's gradient accumulator (the autograd node that
        # adds a new gradient into p.grad), so it runs once p.grad holds this backward's
        # gradient. The accumulators are kept: autograd holds them only weakly.
        self._ringdp_accumulators = []
        with torch.enable_grad():
            for _, p in parameters:
                accumulator = p.expand_as(p).grad_fn.next_functions[0][0]
                accumulator.register_hook(self._ringdp_make_hook(p))
                self._ringdp_accumulators.append(accumulator)

    def _ringdp_make_hook(self, p):
        def hook(*_):
            self._ringdp_ready(p)
        return hook

    def _ringdp_ready(self, p):
        slot = self._ringdp_slots[p]
        view, buckets, passes = slot
        if self._ringdp_synchronized or passes >= self._ringdp_passes:
            raise RuntimeError(
                "ringdp.torch: a gradient was computed again before step() (call step() after "
                f"each backward(), or pass backward_passes_per_step={passes + 1} to "
                "accumulate gradients locally)")
        _adopt_gradient(p, view)
        slot[2] = passes + 1
        if slot[2] == self._ringdp_passes:
            for index in buckets:
                self._ringdp_reducer.submit(index)

    def synchronize(self):
        """Waits until every gradient is averaged over the ranks (the buckets that backward
        has not handed over are reduced now). step() calls it; call it yourself to use the
        averaged gradients before step() (clipping, say). Collective."""
        started = time.perf_counter()
        # Parameters backward gave no gradient this step (unused ones) are averaged too,
        # from their view: zeros unless the caller wrote a gradient.
        for p, slot in self._ringdp_slots.items():
            if slot[2] == 0:
                _adopt_gradient(p, slot[0])
        try:
            self._ringdp_reducer.wait_all()
        finally:
            self._ringdp_synchronized = True
            for slot in self._ringdp_slots.values():
                slot[2] = 0
            self.wait_seconds += time.perf_counter() - started

    def step(self, closure=None):
        """Waits for the averaged gradients (unless synchronize() did), then steps."""
        if closure is not None:
            raise ValueError("ringdp.torch: step(closure) is not supported (the closure's "
                             "backward would not be averaged)")
        if not self._ringdp_synchronized:
            self.synchronize()
        self._ringdp_synchronized = False
        return super(self.__class__, self).step()

    def zero_grad(self, set_to_none=False):
        """Zeroes every gradient in place (one fill of the flat buffer). The gradients stay
        views into the buffer, also with set_to_none=True (then they are zeros, not None)."""
        for p, (view, _, _) in self._ringdp_slots.items():
            if p.grad is None or p.grad.data_ptr() != view.data_ptr():
                p.grad = view
        self._ringdp_arena.zero_()


def DistributedOptimizer(optimizer, model, *, bucket_bytes=None, algorithm="auto",
                         backward_passes_per_step=1, broadcast=True, comm=None):
    """Wraps `optimizer` (over `model`'s parameters) for data-parallel training over `comm`
    (an mpi4py communicator; None: MPI.COMM_WORLD). Collective: every rank builds it with
    the same model.

    Returns an instance of the optimizer's class with the same parameter groups and state.
    At construction rank 0's parameters and buffers are broadcast (broadcast=False: not).
    Each backward() then averages the float32 CPU gradients of every parameter that requires
    one, in buckets of at most `bucket_bytes` (None: ringdp.default_bucket_bytes()) with
    `algorithm` ("auto", "ring", "rd", "mpi", "ps", "shm", "hier"); step() waits for them, then
    steps.
    With backward_passes_per_step=k, gradients of k backward() calls are summed locally and
    averaged over the ranks once, at the k-th. `wait_seconds` adds up the time step() and
    synchronize() waited for the averaging (the communication backward did not hide).

    Between a backward() and step(), do not call MPI (mpi4py included): ringdp's progress
    thread is using it.
    """
    methods = {k: v for k, v in _Distributed.__dict__.items()
               if k not in ("__dict__", "__weakref__")}
    cls = type(optimizer.__class__.__name__, (optimizer.__class__,), methods)
    wrapped = cls(optimizer.param_groups, model, bucket_bytes, algorithm,
                  backward_passes_per_step, broadcast, comm)
    wrapped.load_state_dict(optimizer.state_dict())
    return wrapped


__all__ = ["DistributedOptimizer", "broadcast_parameters"]
