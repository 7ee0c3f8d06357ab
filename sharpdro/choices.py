"""Choice lists with one home: the config validates a value against them before MindSpore
loads, and the code that acts on the value checks the same tuple. No MindSpore import."""
EXECUTION_MODES = ("graph", "pynative")        # mode: runtime.set_context
PARALLEL_MODES = ("auto", "off")               # train.distributed: distributed.init_distributed
SCHEDULES = ("step", "cosine", "constant")     # optim.schedule: optim.lr_schedule
CORRUPTION_TABLES = ("default", "imagenet_c")  # data.corruption_table: datasets/corruptions.py
ROUNDINGS = ("round", "truncate")            # data.uint8_rounding: datasets/corruptions.py
# train.epochs x steps per epoch: optim.lr_schedule holds one learning rate per step (a Python
# float, then the optimizer's array: about 55 bytes of memory each, 0.55 GB at the limit;
# ImageNet-1k for 200 epochs at batch 100 is 2.6 million steps)
MAX_STEPS = 10_000_000
