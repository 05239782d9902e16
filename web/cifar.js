// The CIFAR-10 binary distribution: file names, record layout and class names. Validation of
// the bytes themselves is done once, in C (wt_records_check), for the CLI and the page alike.

export const TRAIN_FILES = Object.freeze(['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin']);
export const TEST_FILE = 'test_batch.bin';
export const ALL_FILES = Object.freeze([...TRAIN_FILES, TEST_FILE]);
export const CLASS_NAMES = Object.freeze(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
export const OFFICIAL_ARCHIVE = 'cifar-10-binary.tar.gz';
export const OFFICIAL_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
