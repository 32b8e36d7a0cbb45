"""In-house training of Apate's default detector: corpus, re-synthesis decoders, training, evaluation.

Modules are imported on use (torch/PIL/sklearn are heavy):
  sources   -- bundled real photos (scikit-image, scikit-learn, matplotlib), split by photo
  decoders  -- re-synthesis autoencoders per upsampling family
  resynth   -- registry of re-synthesisers (taef2: FLUX.2's tiny autoencoder; inhouse) for aligned fakes
  real_photos -- registry of extra real-photo sources (bundled, debian-wallpapers)
  named     -- the small name -> class registry those two share
  corpus    -- build_corpus(out_dir, CorpusOptions) -> DATA_DIR/{train,val,test,heldout}/{real,fake}
  network   -- FingerprintNet, the shipped architecture ("apate_fingerprint")
  train     -- train_detector(data_dir, out_path, TrainOptions)
  evaluate  -- metrics (ROC-AUC, AP, accuracy, EER, ECE), temperature scaling, ROC PNG
"""
