"""The main job's steps, in the order runSequence calls them: configUtils (config -> typed sections),
trainingData (events -> split -> windows), trainer (the epoch loop, resume, checkpoint choice),
alarmSettings (threshold and movement gate on validation), trainExport (.ptl / .pte and app entries),
nnTester (the run's models on the test events and the real recordings), convulsionCheck (more
simulated people's tonic-clonic seizures for nnTester), foldSteps (those steps for
one fold, shared with nestedKfold: inner folds choose, a retrain on the outer training set is tested);
distUtils (torchrun) and cpuSettings (OpenMP waiting, imported first by training commands)."""
