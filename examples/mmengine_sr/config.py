# mmengine Runner config: a small x2 SR network (VDSR, 6 layers) trained on crops of the photographs shipped with
# scikit-image, its inputs synthesised from the ground truth by DMLDataPreprocessor (the shipped DML model of a
# Nikon D5500 zoom lens, x2, plus AWGN). Validation: a held-out photograph whose LR the DMLDegrade pipeline
# transform makes once; the preprocessor leaves that batch alone. Run it with train.py beside this file, which
# registers the example's model, dataset and metric (DMLExample*) first:
#   .venv/bin/python examples/mmengine_sr/train.py --work-dir /tmp/dml_mmengine [--iters 200]
custom_imports = dict(imports=['dml_basicsr.integrations.mmengine'], allow_failed_imports=False)

degradation = dict(pretrained='city100-nikon-x2', noise_sigma=5.0)

model = dict(
    type='DMLExampleSR',
    num_feat=32,
    num_conv=6,
    scale=2,
    # The example's images are RGB uint8; for images loaded with OpenCV (BGR) add bgr_to_rgb=True.
    data_preprocessor=dict(
        type='dml_basicsr.DMLDataPreprocessor', **degradation, mean=[0., 0., 0.], std=[255., 255., 255.]))

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='DMLExamplePhotos',
        photos=['astronaut', 'brick', 'camera', 'chelsea', 'grass', 'gravel', 'rocket'],
        crop_size=48,
        length=1000))

val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='DMLExamplePhotos',
        photos=['coffee'],
        crop_size=256,
        length=1,
        random_crop=False,
        pipeline=[dict(type='dml_basicsr.DMLDegrade', **degradation, seed=0)]))
val_evaluator = dict(type='DMLExamplePSNR')

train_cfg = dict(by_epoch=False, max_iters=200, val_interval=200)
val_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
