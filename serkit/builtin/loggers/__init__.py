"""Built-in experiment loggers, driven by the run-callback hooks.

Each logger lives in its own module and is created for a run by
:func:`serkit.builtin.plugin.serkit_on_run_start` when the recipe's ``logging`` section
enables it (see :data:`serkit.builtin.plugin.BUILTIN_LOGGERS`). A third-party plugin adds
another tracker (W&B, Neptune...) the same way: implement ``serkit_on_run_start``,
``serkit_on_epoch_end`` and ``serkit_on_run_end`` in its plugin module.
"""
