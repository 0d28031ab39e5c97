"""Writes: the one "add memories" use case. Intake (`service`) stores a direct write now or queues an inferred one;
the queue's workers (`worker`) extract facts; both hand drafts to the one function that stores them (`store`)."""
