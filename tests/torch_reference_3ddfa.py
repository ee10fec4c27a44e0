"""PyTorch/numpy reference of 3DDFA_V2's detection and regression, written by hand for parity tests.

A transcription of cleardusk/3DDFA_V2's inference path (no code copied): `FaceBoxesNet` and
`MobileNet` with the official state-dict key layout (so the real `.pth` files load with
`load_state_dict`), the anchors as the nested loops of `utils/prior_box.py`, SSD decoding,
`crop_img` by slicing into a zero canvas, `cv2.resize(INTER_LINEAR)` as `F.interpolate(bilinear,
align_corners=False)` on float pixels (the same sampling; OpenCV's uint8 rounding is left out in
both implementations), `recon_vers` with the Fortran-order reshape and `similar_transform`, and
`P2sRt` + `matrix2angle` with Python's math. Tests only.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _ConvBN(nn.Module):

  def __init__(self, cin, cout, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(cout, eps=1e-5)


class BasicConv2d(_ConvBN):

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class CRelu(_ConvBN):

  def forward(self, x):
    x = self.bn(self.conv(x))
    return F.relu(torch.cat([x, -x], 1))


class Inception(nn.Module):

  def __init__(self):
    super().__init__()
    self.branch1x1 = BasicConv2d(128, 32, kernel_size=1)
    self.branch1x1_2 = BasicConv2d(128, 32, kernel_size=1)
    self.branch3x3_reduce = BasicConv2d(128, 24, kernel_size=1)
    self.branch3x3 = BasicConv2d(24, 32, kernel_size=3, padding=1)
    self.branch3x3_reduce_2 = BasicConv2d(128, 24, kernel_size=1)
    self.branch3x3_2 = BasicConv2d(24, 32, kernel_size=3, padding=1)
    self.branch3x3_3 = BasicConv2d(32, 32, kernel_size=3, padding=1)

  def forward(self, x):
    pooled = F.avg_pool2d(x, 3, stride=1, padding=1)
    return torch.cat([self.branch1x1(x), self.branch1x1_2(pooled),
                      self.branch3x3(self.branch3x3_reduce(x)),
                      self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x)))], 1)


class FaceBoxesNet(nn.Module):
  """Test-phase FaceBoxes: (loc [B, P, 4], softmax scores [B, P, 2])."""

  def __init__(self):
    super().__init__()
    self.conv1 = CRelu(3, 24, kernel_size=7, stride=4, padding=3)
    self.conv2 = CRelu(48, 64, kernel_size=5, stride=2, padding=2)
    self.inception1, self.inception2, self.inception3 = Inception(), Inception(), Inception()
    self.conv3_1 = BasicConv2d(128, 128, kernel_size=1)
    self.conv3_2 = BasicConv2d(128, 256, kernel_size=3, stride=2, padding=1)
    self.conv4_1 = BasicConv2d(256, 128, kernel_size=1)
    self.conv4_2 = BasicConv2d(128, 256, kernel_size=3, stride=2, padding=1)
    self.loc = nn.Sequential(nn.Conv2d(128, 84, 3, padding=1), nn.Conv2d(256, 4, 3, padding=1),
                             nn.Conv2d(256, 4, 3, padding=1))
    self.conf = nn.Sequential(nn.Conv2d(128, 42, 3, padding=1), nn.Conv2d(256, 2, 3, padding=1),
                              nn.Conv2d(256, 2, 3, padding=1))

  def forward(self, x):
    x = F.max_pool2d(self.conv1(x), 3, stride=2, padding=1)
    x = F.max_pool2d(self.conv2(x), 3, stride=2, padding=1)
    s1 = self.inception3(self.inception2(self.inception1(x)))
    s2 = self.conv3_2(self.conv3_1(s1))
    s3 = self.conv4_2(self.conv4_1(s2))
    b = x.shape[0]
    loc = torch.cat([l(s).permute(0, 2, 3, 1).reshape(b, -1) for s, l in
                     zip((s1, s2, s3), self.loc)], 1).view(b, -1, 4)
    conf = torch.cat([c(s).permute(0, 2, 3, 1).reshape(b, -1) for s, c in
                      zip((s1, s2, s3), self.conf)], 1).view(b, -1, 2)
    return loc, F.softmax(conf, dim=-1)


def prior_boxes(height, width):
  anchors = []
  for step, sizes in zip((32, 64, 128), ((32, 64, 128), (256,), (512,))):
    for i in range(math.ceil(height / step)):
      for j in range(math.ceil(width / step)):
        for size in sizes:
          if size == 32:
            grid = [0, 0.25, 0.5, 0.75]
          elif size == 64:
            grid = [0, 0.5]
          else:
            grid = [0.5]
          for dy in grid:
            for dx in grid:
              anchors += [(j + dx) * step / width, (i + dy) * step / height, size / width,
                          size / height]
  return torch.tensor(anchors, dtype=torch.float32).view(-1, 4)


def decode(loc, priors):
  boxes = torch.cat((priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:],
                     priors[:, 2:] * torch.exp(loc[:, 2:] * 0.2)), 1)
  boxes[:, :2] -= boxes[:, 2:] / 2
  boxes[:, 2:] += boxes[:, :2]
  return boxes


def detect(net, frame_rgb):
  """Decoded boxes [P, 4] in pixels and face scores [P] of one RGB frame (upstream's scale 1)."""
  img = frame_rgb[..., ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32)
  h, w = img.shape[:2]
  with torch.no_grad():
    loc, conf = net(torch.from_numpy(img.transpose(2, 0, 1).copy())[None])
  boxes = decode(loc[0], prior_boxes(h, w)) * torch.tensor([w, h, w, h], dtype=torch.float32)
  return boxes.numpy(), conf[0, :, 1].numpy()


class DepthWiseBlock(nn.Module):

  def __init__(self, cin, cout, stride=1):
    super().__init__()
    self.conv_dw = nn.Conv2d(cin, cin, 3, padding=1, stride=stride, groups=cin, bias=False)
    self.bn_dw = nn.BatchNorm2d(cin)
    self.conv_sep = nn.Conv2d(cin, cout, 1, bias=False)
    self.bn_sep = nn.BatchNorm2d(cout)

  def forward(self, x):
    return F.relu(self.bn_sep(self.conv_sep(F.relu(self.bn_dw(self.conv_dw(x))))))


class MobileNet(nn.Module):
  """MobileNet v1 (width 0.5), 62 outputs; `fc_lm` kept only so the checkpoint loads strictly."""

  def __init__(self, widen=0.5):
    super().__init__()
    c = lambda n: int(n * widen)
    self.conv1 = nn.Conv2d(3, c(32), 3, stride=2, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(c(32))
    spec = [('dw2_1', 32, 64, 1), ('dw2_2', 64, 128, 2), ('dw3_1', 128, 128, 1),
            ('dw3_2', 128, 256, 2), ('dw4_1', 256, 256, 1), ('dw4_2', 256, 512, 2)]
    spec += [(f'dw5_{k}', 512, 512, 1) for k in range(1, 6)]
    spec += [('dw5_6', 512, 1024, 2), ('dw6', 1024, 1024, 1)]
    self.names = [s[0] for s in spec]
    for name, cin, cout, stride in spec:
      setattr(self, name, DepthWiseBlock(c(cin), c(cout), stride))
    self.fc_param = nn.Linear(c(1024), 62)
    self.fc_lm = nn.Linear(c(1024), 136)

  def forward(self, x):
    x = F.relu(self.bn1(self.conv1(x)))
    for name in self.names:
      x = getattr(self, name)(x)
    return self.fc_param(F.adaptive_avg_pool2d(x, 1).flatten(1))


def load_regressor(state_dict):
  net = MobileNet()
  net.load_state_dict({k.removeprefix('module.'): v for k, v in state_dict.items()})
  return net.eval()


def roi_from_box(box):
  left, top, right, bottom = box[:4]
  old_size = (right - left + bottom - top) / 2
  cx, cy = right - (right - left) / 2.0, bottom - (bottom - top) / 2.0 + old_size * 0.14
  size = int(old_size * 1.58)
  return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def roi_from_landmarks(pts):  # pts [2+, 68]
  x0, y0, x1, y1 = min(pts[0]), min(pts[1]), max(pts[0]), max(pts[1])
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  r = max(x1 - x0, y1 - y0) / 2
  side = math.sqrt((2 * r) ** 2 * 2)
  return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def crop(img, roi):
  h, w = img.shape[:2]
  sx, sy, ex, ey = [int(round(v)) for v in roi]
  out = np.zeros((ey - sy, ex - sx, img.shape[2]), np.float32)
  ys, xs = max(sy, 0), max(sx, 0)
  ye, xe = min(ey, h), min(ex, w)
  out[ys - sy:ye - sy, xs - sx:xe - sx] = img[ys:ye, xs:xe]
  return out


def regress(net, frame_rgb, roi, mean, std):
  """De-normalised 62 parameters of the ROI of one RGB frame."""
  patch = crop(frame_rgb[..., ::-1].astype(np.float32), roi)
  t = torch.from_numpy(patch.transpose(2, 0, 1).copy())[None]
  t = F.interpolate(t, size=(120, 120), mode='bilinear', align_corners=False)
  with torch.no_grad():
    out = net((t - 127.5) / 128.0)[0].numpy()
  return out * std + mean


def landmarks(param, roi, u_base, w_shp, w_exp, size=120):
  """[3, 68]: x, y (pixels), z, as `recon_vers(dense_flag=False)`."""
  p = param.astype(np.float64)
  camera = p[:12].reshape(3, 4)
  pts = (u_base + w_shp @ p[12:52] + w_exp @ p[52:]).reshape(3, -1, order='F')
  pts = camera[:, :3] @ pts + camera[:, 3:]
  pts[0] -= 1
  pts[2] -= 1
  pts[1] = size - pts[1]
  sx, sy, ex, ey = roi
  scale_x, scale_y = (ex - sx) / size, (ey - sy) / size
  pts[0] = pts[0] * scale_x + sx
  pts[1] = pts[1] * scale_y + sy
  pts[2] *= (scale_x + scale_y) / 2
  pts[2] -= pts[2].min()
  return pts


def pose(param):
  """(yaw, pitch, roll) in radians, scale, as P2sRt + matrix2angle."""
  camera = param[:12].astype(np.float64).reshape(3, 4)
  n1, n2 = np.linalg.norm(camera[0, :3]), np.linalg.norm(camera[1, :3])
  r1, r2 = camera[0, :3] / n1, camera[1, :3] / n2
  r = np.stack([r1, r2, np.cross(r1, r2)])
  if r[2, 0] > 0.998:
    angles = (math.pi / 2, math.atan2(-r[0, 1], -r[0, 2]), 0.0)
  elif r[2, 0] < -0.998:
    angles = (-math.pi / 2, math.atan2(r[0, 1], r[0, 2]), 0.0)
  else:
    x = math.asin(r[2, 0])
    angles = (x, math.atan2(r[2, 1] / math.cos(x), r[2, 2] / math.cos(x)),
              math.atan2(r[1, 0] / math.cos(x), r[0, 0] / math.cos(x)))
  return np.array(angles), (n1 + n2) / 2
