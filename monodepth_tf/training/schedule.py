"""The learning-rate schedule."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="monodepth_tf")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The original's schedule: ``learning_rate * 0.1 ** (epoch // step_size_epochs)``."""

    def __init__(self, learning_rate: float, step_size_epochs: int, steps_per_epoch: int):
        self.learning_rate = learning_rate
        self.step_size_epochs = step_size_epochs
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, step):
        epoch = tf.cast(step, tf.int64) // self.steps_per_epoch
        drops = tf.cast(epoch // self.step_size_epochs, tf.float32)
        return self.learning_rate * tf.pow(0.1, drops)

    def get_config(self):
        return dict(learning_rate=self.learning_rate, step_size_epochs=self.step_size_epochs,
                    steps_per_epoch=self.steps_per_epoch)
