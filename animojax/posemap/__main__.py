"""Pose-mapping command line: fit Φ for a morphable model, apply a Φ, or run EDTN.

  python -m animojax.posemap fit --model=3ddfa:DIR --out=phi.npy          # + phi.png sheet
  python -m animojax.posemap edits --model=embedded --out=semantics.png   # picture of T.1
  python -m animojax.posemap apply --phi=pose_coeffs.npy --poses=poses.npy --out=motion.npy
  python -m animojax.posemap edtn --weights=EDTN.pt --out=poses.npy frame0.mat frame1.mat ...

Model specs: `embedded`, `bfm:PATH/BFM_model_front.mat`, `3ddfa:DIR`, `sfm:DIR` (see
`animojax.posemap.loaders`). `apply` maps AnimeCeleb pose vectors [N, 20] to 70-D motion vectors
(exp | angles | trans, AniMo's driving signal) with any Φ, the released pose_coeffs.npy included.
"""

import argparse
import os

import numpy as np

from animojax.posemap import camera
from animojax.posemap import edtn
from animojax.posemap import fit
from animojax.posemap import loaders
from animojax.posemap import mapping
from animojax.posemap import semantic_edits
from animojax.posemap import sheet
from animojax.utils import cli

_DEFAULTS = fit.FitConfig()


def _views(text: str) -> tuple[tuple[float, float, float], ...]:
  try:
    views = tuple(tuple(float(a) for a in view.split(',')) for view in text.split(';'))
  except ValueError:
    views = ()
  if not views or any(len(v) != 3 for v in views):
    raise argparse.ArgumentTypeError(f'--views {text!r}: expected "pitch,yaw,roll;..." degrees.')
  return views


def _permutation(text: str) -> tuple[int, ...]:
  try:
    perm = tuple(int(a) for a in text.split(','))
  except ValueError:
    perm = ()
  if sorted(perm) != [0, 1, 2]:
    raise argparse.ArgumentTypeError(f'--angle_permutation {text!r}: expected a permutation of '
                                     '0,1,2 such as 0,2,1.')
  return perm


def _save(path: str, array) -> None:
  """np.save through a temporary file and a rename: never a half-written .npy at `path`."""
  final = path if path.endswith('.npy') else path + '.npy'  # As np.save names it.
  tmp = f'{final}.tmp-{os.getpid()}.npy'
  try:
    np.save(tmp, array)
    os.replace(tmp, final)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _fit(args) -> None:
  model = loaders.load_model(args.model)
  config = fit.FitConfig(camera=args.camera, reg=args.reg, views=args.views,
                         iterations=args.iterations)
  result = fit.fit_phi(model, config=config)
  _save(args.out, result.phi)
  sheet_path = args.sheet or os.path.splitext(args.out)[0] + '.png'
  sheet.fit_sheet(result, sheet_path, title=f'{model.name} ({model.num_exp} exp), {args.camera}')
  print(f'Wrote Φ {result.phi.shape} to {args.out} and the sheet to {sheet_path}.')
  print(fit.error_table(result))


def _edits(args) -> None:
  model = loaders.load_model(args.model)
  targets = semantic_edits.semantic_targets(model.mean)
  sheet.semantic_sheet(model.mean, targets, args.out, title=f'T.1 edits, {model.name} face')
  print(f'Wrote the picture of the 17 landmark edits to {args.out}.')


def _apply(args) -> None:
  phi = mapping.load_phi(args.phi, setting='--phi')
  if not os.path.isfile(args.poses):
    raise FileNotFoundError(f'--poses {args.poses!r} not found (a .npy of [N, 20] AnimeCeleb '
                            'pose vectors).')
  try:
    poses = np.load(args.poses, allow_pickle=False)
  except Exception as e:  # pylint: disable=broad-except  (numpy raises several types)
    raise ValueError(f'--poses {args.poses!r}: cannot read it as a .npy file ({e}).') from e
  if not np.issubdtype(poses.dtype, np.number) or np.iscomplexobj(poses):
    raise ValueError(f'--poses {args.poses!r}: expected real numbers, got dtype {poses.dtype}.')
  poses = poses.astype(np.float32)
  if poses.ndim < 1 or poses.shape[-1] != mapping.NUM_POSE:
    raise ValueError(f'--poses {args.poses!r}: expected AnimeCeleb pose vectors '
                     f'[..., {mapping.NUM_POSE}], got shape {poses.shape}.')
  if not np.all(np.isfinite(poses)):
    raise ValueError(f'--poses {args.poses!r}: contains NaN or Inf.')
  motion = mapping.anime_pose_to_3dmm(poses, phi, args.angle_permutation)
  _save(args.out, motion)
  print(f'Wrote motion vectors {motion.shape} to {args.out}.')


def _edtn(args) -> None:
  model = edtn.load_edtn(args.weights)
  codes = [edtn.read_deca_mat(path) for path in args.deca]
  exp = np.stack([c['exp'] for c in codes])
  pose = np.stack([c['pose'] for c in codes])
  poses = np.asarray(edtn.deca_to_anime_pose(model, exp, pose))
  _save(args.out, poses)
  print(f'Wrote AnimeCeleb pose vectors {poses.shape} to {args.out}.')


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog='python -m animojax.posemap',
                                   description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest='command', required=True)
  p = commands.add_parser('fit', help='fit Φ (17 x K) for a morphable model')
  p.add_argument('--model', required=True, help='embedded | bfm:FILE.mat | 3ddfa:DIR | sfm:DIR')
  p.add_argument('--out', required=True, help='where to write Φ (.npy)')
  p.add_argument('--sheet', help='PNG of target vs fitted landmarks (default: OUT with .png)')
  p.add_argument('--camera', default=_DEFAULTS.camera, choices=camera.CAMERAS)
  p.add_argument('--reg', type=float, default=_DEFAULTS.reg,
                 help='ℓ2 weight (see animojax.posemap.fit)')
  p.add_argument('--views', type=_views, default=_DEFAULTS.views,
                 help='head poses "pitch,yaw,roll;..." in degrees (default frontal)')
  p.add_argument('--iterations', type=int, default=_DEFAULTS.iterations,
                 help='Levenberg-Marquardt iterations (perspective camera)')
  p.set_defaults(run=_fit)
  p = commands.add_parser('edits', help='picture of the 17 landmark edits (T.1) on a model')
  p.add_argument('--model', required=True, help='embedded | bfm:FILE.mat | 3ddfa:DIR | sfm:DIR')
  p.add_argument('--out', required=True, help='PNG path')
  p.set_defaults(run=_edits)
  p = commands.add_parser('apply', help='map AnimeCeleb poses [N, 20] to 70-D motion vectors')
  p.add_argument('--phi', required=True, help='17 x K or 17 x 257 (pose_coeffs.npy) matrix')
  p.add_argument('--poses', required=True, help='.npy of [..., 20] pose vectors')
  p.add_argument('--out', required=True)
  p.add_argument('--angle_permutation', type=_permutation,
                 default=mapping.ANIMO_ANGLE_PERMUTATION,
                 help="AniMo's 0,2,1 (default) or EDTN training's 1,2,0")
  p.set_defaults(run=_apply)
  p = commands.add_parser('edtn', help='DECA .mat codes -> AnimeCeleb poses with EDTN')
  p.add_argument('--weights', required=True, help="EDTN.pt (the AnimeCeleb repo's release)")
  p.add_argument('--out', required=True)
  p.add_argument('deca', nargs='+', help='DECA .mat files (exp, pose)')
  p.set_defaults(run=_edtn)
  args = parser.parse_args(argv)
  with cli.user_errors(f'posemap {args.command}'):
    for flag in ('out', 'sheet'):  # Before the work: a fit takes a while.
      if getattr(args, flag, None):
        cli.check_out_path(getattr(args, flag), f'--{flag}')
    args.run(args)


if __name__ == '__main__':
  main()
