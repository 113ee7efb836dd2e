"""The constructor checks every loss of the plugin shares."""


def check_loss_args(loss: str, loss_weight: float, loss_name: str) -> None:
    """Raise for a negative (or NaN) ``loss_weight`` and for a ``loss_name``
    mmengine's ``parse_losses`` would not back-propagate.

    Args:
        loss (str): The loss's class name, for the message.
        loss_weight (float): Its weight (0 turns the term off).
        loss_name (str): Its log key; must start with ``loss_``.
    """
    if not loss_weight >= 0:
        raise ValueError(f'{loss} got loss_weight={loss_weight!r}; use a '
                         'weight >= 0 (0 turns the term off).')
    if not loss_name.startswith('loss_'):
        raise ValueError(f"{loss} got loss_name={loss_name!r}; it must start "
                         "with 'loss_' or mmengine will not back-propagate "
                         'it.')
