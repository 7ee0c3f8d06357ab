"""Choice lists with one home: the config validates a value against them before MindSpore
loads, and the code that acts on the value checks the same tuple. No MindSpore import."""
EXECUTION_MODES = ("graph", "pynative")        # mode: runtime.set_context
PARALLEL_MODES = ("auto", "off")               # train.distributed: distributed.init_distributed
SCHEDULES = ("step", "cosine", "constant")     # optim.schedule: optim.lr_schedule
CORRUPTION_TABLES = ("default", "imagenet_c")  # data.corruption_table: datasets/corruptions.py
ROUNDINGS = ("round", "truncate")            # data.uint8_rounding: datasets/corruptions.py
