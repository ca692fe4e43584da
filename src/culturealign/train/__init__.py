"""LoRA SFT (TRL + PEFT), merging, and the ``accelerate launch`` entry point."""

from culturealign.train.lora import TrainResult, merge_adapter, read_training_data, train_lora, write_training_data

__all__ = ["TrainResult", "merge_adapter", "read_training_data", "train_lora", "write_training_data"]
