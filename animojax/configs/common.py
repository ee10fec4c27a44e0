"""Helpers shared by config files (big_vision's `parse_arg` convention)."""

import ml_collections


def parse_arg(arg, **spec):
  """Parses `--config=name:a=1,b=x,flag` against defaults `spec` (types follow the defaults).

  A bare `flag` sets a boolean default to True. Unknown keys are an error, so a typo in the
  config argument fails as loudly as a typo in a `--config.x=y` override.
  """
  result = ml_collections.ConfigDict(spec)
  for item in filter(None, (arg or '').split(',')):
    key, has_value, value = item.partition('=')
    if key not in spec:
      raise ValueError(f'Unknown config argument {key!r}; known: {sorted(spec)}.')
    default = spec[key]
    if not has_value:
      if not isinstance(default, bool):
        raise ValueError(f'Config argument {key!r} needs a value ({key}=...).')
      result[key] = True
    elif isinstance(default, bool):
      if value.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(f'Config argument {key!r} takes true/false, got {value!r}.')
      result[key] = value.lower() in ('true', '1')
    else:
      result[key] = type(default)(value)
  return result
