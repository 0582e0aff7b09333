"""The op policy's lists: which op types a model may use, and which are never accepted.

``ALLOWED`` is an allowlist, reviewed by hand from ``tf.raw_ops``: op types that compute only on
their inputs and on state inside the process (variables, tables, random generators). Any
other op type is a finding, including every op type a future TensorFlow adds, until it is
reviewed and listed here; ``tests/test_safety_policy.py`` checks every entry is a real op.

Left out on purpose: files (``ReadFile``, ``WriteFile``, ``MatchingFiles``, readers, every
``*Dataset`` and iterator op), checkpoints (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``,
``LoadAndRemapMatrix``), summaries and debug ops (they write files or connect to URLs), Python
(``PyFunc``), memory maps (``ImmutableConst``), the network (RPC, collectives, ``Send``/``Recv``,
``RemoteCall``, data service), TPU/XLA plumbing, queues/staging areas/barriers shared between
sessions, ``DecodeProtoV2``/``EncodeProto`` (their descriptor source may be a file) and
``Abort``. Checkpoint ops and text-file table initializers are accepted only where the model's
structure says they belong (see :mod:`tfhub.safety.scan`).
"""

from __future__ import annotations

__all__ = [
    "ALLOWED",
    "ASSET_READERS",
    "CONDITIONAL",
    "REFUSED",
    "RESTORE_OPS",
    "SAVE_OPS",
    "describe",
]


def _ops(text: str) -> frozenset[str]:
    return frozenset(text.split())


CONTROL_FLOW = _ops(
    """
    Assert Case CheckNumerics CheckNumericsV2 Const ControlTrigger DeepCopy EnsureShape Enter
    Exit FakeParam For GuaranteeConst Identity IdentityN If LoopCond Merge NextIteration NoOp
    OptionalFromValue OptionalGetValue OptionalHasValue OptionalNone PartitionedCall
    Placeholder PlaceholderV2 PlaceholderWithDefault PreventGradient RefEnter RefExit
    RefIdentity RefMerge RefNextIteration RefSelect RefSwitch Snapshot StatefulPartitionedCall
    StatelessCase StatelessIf StatelessWhile StopGradient Switch SymbolicGradient While
    """
)
VARIABLES = _ops(
    """
    Assign AssignAdd AssignAddVariableOp AssignSub AssignSubVariableOp AssignVariableOp
    CountUpTo DestroyResourceOp DestroyTemporaryVariable DisableCopyOnRead
    IsVariableInitialized ReadVariableOp ResourceCountUpTo
    ResourceGather ResourceGatherNd ResourceScatterAdd ResourceScatterDiv ResourceScatterMax
    ResourceScatterMin ResourceScatterMul ResourceScatterNdAdd ResourceScatterNdMax
    ResourceScatterNdMin ResourceScatterNdSub ResourceScatterNdUpdate ResourceScatterSub
    ResourceScatterUpdate ResourceStridedSliceAssign ScatterAdd ScatterDiv ScatterMax
    ScatterMin ScatterMul ScatterNd ScatterNdAdd ScatterNdMax ScatterNdMin
    ScatterNdNonAliasingAdd ScatterNdSub ScatterNdUpdate ScatterSub ScatterUpdate
    StridedSliceAssign TemporaryVariable VarHandleOp VarIsInitializedOp Variable VariableShape
    VariableV2
    """
)
OPTIMIZERS = _ops(
    """
    ApplyAdaMax ApplyAdadelta ApplyAdagrad ApplyAdagradDA ApplyAdagradV2 ApplyAdam ApplyAddSign
    ApplyCenteredRMSProp ApplyFtrl ApplyFtrlV2 ApplyGradientDescent ApplyMomentum
    ApplyPowerSign ApplyProximalAdagrad ApplyProximalGradientDescent ApplyRMSProp
    ResourceApplyAdaMax ResourceApplyAdadelta ResourceApplyAdagrad ResourceApplyAdagradDA
    ResourceApplyAdagradV2 ResourceApplyAdam ResourceApplyAdamWithAmsgrad ResourceApplyAddSign
    ResourceApplyCenteredRMSProp ResourceApplyFtrl ResourceApplyFtrlV2
    ResourceApplyGradientDescent ResourceApplyKerasMomentum ResourceApplyMomentum
    ResourceApplyPowerSign ResourceApplyProximalAdagrad ResourceApplyProximalGradientDescent
    ResourceApplyRMSProp ResourceSparseApplyAdadelta ResourceSparseApplyAdagrad
    ResourceSparseApplyAdagradDA ResourceSparseApplyAdagradV2
    ResourceSparseApplyCenteredRMSProp ResourceSparseApplyFtrl ResourceSparseApplyFtrlV2
    ResourceSparseApplyKerasMomentum ResourceSparseApplyMomentum
    ResourceSparseApplyProximalAdagrad ResourceSparseApplyProximalGradientDescent
    ResourceSparseApplyRMSProp SparseApplyAdadelta SparseApplyAdagrad SparseApplyAdagradDA
    SparseApplyAdagradV2 SparseApplyCenteredRMSProp SparseApplyFtrl SparseApplyFtrlV2
    SparseApplyMomentum SparseApplyProximalAdagrad SparseApplyProximalGradientDescent
    SparseApplyRMSProp
    """
)
TABLES = _ops(
    """
    AddManySparseToTensorsMap AddSparseToTensorsMap AnonymousHashTable
    AnonymousMutableDenseHashTable AnonymousMutableHashTable AnonymousMutableHashTableOfTensors
    HashTable HashTableV2 InitializeTable InitializeTableV2 LookupTableExport
    LookupTableExportV2 LookupTableFind LookupTableFindV2 LookupTableImport LookupTableImportV2
    LookupTableInsert LookupTableInsertV2 LookupTableRemoveV2 LookupTableSize LookupTableSizeV2
    MutableDenseHashTable MutableDenseHashTableV2 MutableHashTable MutableHashTableOfTensors
    MutableHashTableOfTensorsV2 MutableHashTableV2 TakeManySparseFromTensorsMap
    """
)
RANDOM = _ops(
    """
    AllCandidateSampler AnonymousRandomSeedGenerator AnonymousSeedGenerator
    ComputeAccidentalHits DeleteRandomSeedGenerator DeleteSeedGenerator DummySeedGenerator
    FixedUnigramCandidateSampler LearnedUnigramCandidateSampler LogUniformCandidateSampler
    Multinomial NonDeterministicInts ParameterizedTruncatedNormal RandomCrop RandomGamma
    RandomGammaGrad RandomIndexShuffle RandomPoisson RandomPoissonV2 RandomShuffle
    RandomStandardNormal RandomUniform RandomUniformInt RngReadAndSkip RngSkip SobolSample
    StatefulRandomBinomial StatefulStandardNormal StatefulStandardNormalV2
    StatefulTruncatedNormal StatefulUniform StatefulUniformFullInt StatefulUniformInt
    StatelessMultinomial StatelessParameterizedTruncatedNormal StatelessRandomBinomial
    StatelessRandomGammaV2 StatelessRandomGammaV3 StatelessRandomGetAlg
    StatelessRandomGetKeyCounter StatelessRandomGetKeyCounterAlg StatelessRandomNormal
    StatelessRandomNormalV2 StatelessRandomPoisson StatelessRandomUniform
    StatelessRandomUniformFullInt StatelessRandomUniformFullIntV2 StatelessRandomUniformInt
    StatelessRandomUniformIntV2 StatelessRandomUniformV2 StatelessSampleDistortedBoundingBox
    StatelessShuffle StatelessTruncatedNormal StatelessTruncatedNormalV2
    ThreadUnsafeUnigramCandidateSampler TruncatedNormal UniformCandidateSampler
    """
)
STRINGS = _ops(
    """
    AsString DecodeBase64 EditDistance EncodeBase64 Fingerprint ReduceJoin RegexFullMatch
    RegexReplace StaticRegexFullMatch StaticRegexReplace StringFormat StringJoin StringLength
    StringLower StringNGrams StringSplit StringSplitV2 StringStrip StringToHashBucket
    StringToHashBucketFast StringToHashBucketStrong StringToNumber StringUpper Substr
    UnicodeDecode UnicodeDecodeWithOffsets UnicodeEncode UnicodeScript UnicodeTranscode
    UnsortedSegmentJoin
    """
)
IMAGE_AUDIO = _ops(
    """
    AdjustContrast AdjustContrastv2 AdjustHue AdjustSaturation AudioSpectrogram
    CombinedNonMaxSuppression CropAndResize CropAndResizeGradBoxes CropAndResizeGradImage
    DecodeAndCropJpeg DecodeBmp DecodeGif DecodeImage DecodeJpeg DecodeJxl DecodePng DecodeWav
    DecodeWebP DrawBoundingBoxes DrawBoundingBoxesV2 EncodeJpeg EncodeJpegVariableQuality
    EncodePng EncodeWav
    ExtractGlimpse ExtractGlimpseV2 ExtractImagePatches ExtractJpegShape ExtractVolumePatches
    FusedResizeAndPadConv2D GenerateBoundingBoxProposals HSVToRGB ImageProjectiveTransformV2
    ImageProjectiveTransformV3 Mfcc NonMaxSuppression NonMaxSuppressionV2 NonMaxSuppressionV3
    NonMaxSuppressionV4 NonMaxSuppressionV5 NonMaxSuppressionWithOverlaps
    QuantizedResizeBilinear RGBToHSV ResizeArea ResizeBicubic ResizeBicubicGrad ResizeBilinear
    ResizeBilinearGrad ResizeNearestNeighbor ResizeNearestNeighborGrad
    SampleDistortedBoundingBox SampleDistortedBoundingBoxV2 ScaleAndTranslate
    ScaleAndTranslateGrad
    """
)
PARSING = _ops(
    """
    DecodeCSV DecodeCompressed DecodeJSONExample DecodePaddedRaw DecodeRaw
    DeserializeManySparse DeserializeSparse ParseExample ParseExampleV2 ParseSequenceExample
    ParseSequenceExampleV2 ParseSingleExample ParseSingleSequenceExample ParseTensor
    SerializeManySparse SerializeSparse SerializeTensor
    """
)
LISTS_ARRAYS_OF_TENSORS = _ops(
    """
    EmptyTensorList EmptyTensorMap Stack StackClose StackCloseV2 StackPop StackPopV2 StackPush
    StackPushV2 StackV2 TensorArray TensorArrayClose TensorArrayCloseV2 TensorArrayCloseV3
    TensorArrayConcat TensorArrayConcatV2 TensorArrayConcatV3 TensorArrayGather
    TensorArrayGatherV2 TensorArrayGatherV3 TensorArrayGrad TensorArrayGradV2 TensorArrayGradV3
    TensorArrayGradWithShape TensorArrayPack TensorArrayRead TensorArrayReadV2
    TensorArrayReadV3 TensorArrayScatter TensorArrayScatterV2 TensorArrayScatterV3
    TensorArraySize TensorArraySizeV2 TensorArraySizeV3 TensorArraySplit TensorArraySplitV2
    TensorArraySplitV3 TensorArrayUnpack TensorArrayV2 TensorArrayV3 TensorArrayWrite
    TensorArrayWriteV2 TensorArrayWriteV3 TensorListConcat TensorListConcatLists
    TensorListConcatV2 TensorListElementShape TensorListFromTensor TensorListGather
    TensorListGetItem TensorListLength TensorListPopBack TensorListPushBack
    TensorListPushBackBatch TensorListReserve TensorListResize TensorListScatter
    TensorListScatterIntoExistingList TensorListScatterV2 TensorListSetItem TensorListSplit
    TensorListStack TensorMapErase TensorMapHasKey TensorMapInsert TensorMapLookup
    TensorMapSize TensorMapStackKeys
    """
)
SPARSE_RAGGED = _ops(
    """
    CSRSparseMatrixComponents CSRSparseMatrixToDense CSRSparseMatrixToSparseTensor
    CompositeTensorVariantFromComponents CompositeTensorVariantToComponents
    DenseCountSparseOutput DenseToCSRSparseMatrix DenseToSparseSetOperation RaggedBincount
    RaggedCountSparseOutput RaggedCross RaggedFillEmptyRows RaggedFillEmptyRowsGrad
    RaggedGather RaggedRange RaggedTensorFromVariant RaggedTensorToSparse RaggedTensorToTensor
    RaggedTensorToVariant RaggedTensorToVariantGradient SparseAdd SparseAddGrad SparseBincount
    SparseConcat SparseCountSparseOutput SparseCross SparseCrossHashed SparseCrossV2
    SparseDenseCwiseAdd SparseDenseCwiseDiv SparseDenseCwiseMul SparseFillEmptyRows
    SparseFillEmptyRowsGrad SparseMatMul SparseMatrixAdd SparseMatrixMatMul SparseMatrixMul
    SparseMatrixNNZ SparseMatrixOrderingAMD SparseMatrixSoftmax SparseMatrixSoftmaxGrad
    SparseMatrixSparseCholesky SparseMatrixSparseMatMul SparseMatrixTranspose SparseMatrixZeros
    SparseReduceMax SparseReduceMaxSparse SparseReduceSum SparseReduceSumSparse SparseReorder
    SparseReshape SparseSegmentMean SparseSegmentMeanGrad SparseSegmentMeanGradV2
    SparseSegmentMeanWithNumSegments SparseSegmentSqrtN SparseSegmentSqrtNGrad
    SparseSegmentSqrtNGradV2 SparseSegmentSqrtNWithNumSegments SparseSegmentSum
    SparseSegmentSumGrad SparseSegmentSumGradV2 SparseSegmentSumWithNumSegments SparseSlice
    SparseSliceGrad SparseSoftmax SparseSoftmaxCrossEntropyWithLogits SparseSparseMaximum
    SparseSparseMinimum SparseSplit SparseTensorDenseAdd SparseTensorDenseMatMul
    SparseTensorToCSRSparseMatrix SparseToDense SparseToSparseSetOperation
    """
)
QUANTIZATION = _ops(
    """
    Dequantize FakeQuantWithMinMaxArgs FakeQuantWithMinMaxArgsGradient FakeQuantWithMinMaxVars
    FakeQuantWithMinMaxVarsGradient FakeQuantWithMinMaxVarsPerChannel
    FakeQuantWithMinMaxVarsPerChannelGradient QuantizeAndDequantize QuantizeAndDequantizeV2
    QuantizeAndDequantizeV3 QuantizeAndDequantizeV4 QuantizeAndDequantizeV4Grad
    QuantizeDownAndShrinkRange QuantizeV2 QuantizedAdd QuantizedAvgPool
    QuantizedBatchNormWithGlobalNormalization QuantizedBiasAdd QuantizedConcat QuantizedConv2D
    QuantizedConv2DAndRelu QuantizedConv2DAndReluAndRequantize QuantizedConv2DAndRequantize
    QuantizedConv2DPerChannel QuantizedConv2DWithBias QuantizedConv2DWithBiasAndRelu
    QuantizedConv2DWithBiasAndReluAndRequantize QuantizedConv2DWithBiasAndRequantize
    QuantizedConv2DWithBiasSignedSumAndReluAndRequantize QuantizedConv2DWithBiasSumAndRelu
    QuantizedConv2DWithBiasSumAndReluAndRequantize QuantizedDepthwiseConv2D
    QuantizedDepthwiseConv2DWithBias QuantizedDepthwiseConv2DWithBiasAndRelu
    QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize QuantizedInstanceNorm QuantizedMatMul
    QuantizedMatMulWithBias QuantizedMatMulWithBiasAndDequantize QuantizedMatMulWithBiasAndRelu
    QuantizedMatMulWithBiasAndReluAndRequantize QuantizedMatMulWithBiasAndRequantize
    QuantizedMaxPool QuantizedMul QuantizedRelu QuantizedRelu6 QuantizedReluX QuantizedReshape
    RequantizationRange RequantizationRangePerChannel Requantize RequantizePerChannel
    UniformDequantize UniformQuantize UniformQuantizedAdd UniformQuantizedClipByValue
    UniformQuantizedConvolution UniformQuantizedConvolutionHybrid UniformQuantizedDot
    UniformQuantizedDotHybrid UniformRequantize
    """
)
NN = _ops(
    """
    ApproxTopK AvgPool AvgPool3D AvgPool3DGrad AvgPoolGrad BatchNormWithGlobalNormalization
    BatchNormWithGlobalNormalizationGrad BiasAdd BiasAddGrad BiasAddV1 Bincount BlockLSTM
    BlockLSTMGrad BlockLSTMGradV2 BlockLSTMV2 CTCBeamSearchDecoder CTCGreedyDecoder CTCLoss
    CTCLossV2 Conv Conv2D Conv2DBackpropFilter Conv2DBackpropFilterV2 Conv2DBackpropInput
    Conv2DBackpropInputV2 Conv3D Conv3DBackpropFilter Conv3DBackpropFilterV2
    Conv3DBackpropInput Conv3DBackpropInputV2 CudnnRNN CudnnRNNBackprop CudnnRNNBackpropV2
    CudnnRNNBackpropV3 CudnnRNNCanonicalToParams CudnnRNNCanonicalToParamsV2 CudnnRNNParamsSize
    CudnnRNNParamsToCanonical CudnnRNNParamsToCanonicalV2 CudnnRNNV2 CudnnRNNV3
    DataFormatDimMap DataFormatVecPermute DenseBincount DepthToSpace DepthwiseConv2dNative
    DepthwiseConv2dNativeBackpropFilter DepthwiseConv2dNativeBackpropInput Dilation2D
    Dilation2DBackpropFilter Dilation2DBackpropInput Elu EluGrad FractionalAvgPool
    FractionalAvgPoolGrad FractionalMaxPool FractionalMaxPoolGrad FusedBatchNorm
    FusedBatchNormGrad FusedBatchNormGradV2 FusedBatchNormGradV3 FusedBatchNormV2
    FusedBatchNormV3 FusedPadConv2D GRUBlockCell GRUBlockCellGrad InTopK InTopKV2
    IsotonicRegression KMC2ChainInitialization KmeansPlusPlusInitialization L2Loss LRN LRNGrad
    LSTMBlockCell LSTMBlockCellGrad LeakyRelu LeakyReluGrad LogSoftmax MaxPool MaxPool3D
    MaxPool3DGrad MaxPool3DGradGrad MaxPoolGrad MaxPoolGradGrad MaxPoolGradGradV2
    MaxPoolGradGradWithArgmax MaxPoolGradV2 MaxPoolGradWithArgmax MaxPoolV2 MaxPoolWithArgmax
    NearestNeighbors NthElement Relu Relu6 Relu6Grad ReluGrad Selu SeluGrad Sigmoid SigmoidGrad
    Softmax SoftmaxCrossEntropyWithLogits Softplus SoftplusGrad Softsign SoftsignGrad
    SpaceToDepth Tanh TanhGrad TopK TopKV2
    """
)
MATH_AND_ARRAYS = _ops(
    """
    Abs AccumulateNV2 Acos Acosh Add AddN AddV2 All Angle Any ApproximateEqual ArgMax ArgMin
    Asin Asinh Atan Atan2 Atanh BandedTriangularSolve BatchCholesky BatchCholeskyGrad BatchFFT
    BatchFFT2D BatchFFT3D BatchIFFT BatchIFFT2D BatchIFFT3D BatchMatMul BatchMatMulV2
    BatchMatMulV3 BatchMatrixBandPart BatchMatrixDeterminant BatchMatrixDiag
    BatchMatrixDiagPart BatchMatrixInverse BatchMatrixSetDiag BatchMatrixSolve
    BatchMatrixSolveLs BatchMatrixTriangularSolve BatchSelfAdjointEig BatchSelfAdjointEigV2
    BatchSvd BatchToSpace BatchToSpaceND BesselI0 BesselI0e BesselI1 BesselI1e BesselJ0
    BesselJ1 BesselK0 BesselK0e BesselK1 BesselK1e BesselY0 BesselY1 Betainc Bitcast BitwiseAnd
    BitwiseOr BitwiseXor BroadcastArgs BroadcastGradientArgs BroadcastTo Bucketize Cast Ceil
    Cholesky CholeskyGrad ClipByValue Complex ComplexAbs Concat ConcatOffset ConcatV2 Conj
    ConjugateTranspose Cos Cosh Cross Cumprod Cumsum CumulativeLogsumexp Dawsn
    DenseToDenseSetOperation Diag DiagPart Digamma Div DivNoNan DynamicPartition DynamicStitch
    Eig Einsum Empty Equal Erf Erfc Erfinv EuclideanNorm Exp ExpandDims Expint Expm1 FFT FFT2D
    FFT3D FFTND Fact Fill Floor FloorDiv FloorMod FresnelCos FresnelSin Gather GatherNd
    GatherV2 Greater GreaterEqual HistogramFixedWidth IFFT IFFT2D IFFT3D IFFTND IRFFT IRFFT2D
    IRFFT3D IRFFTND Igamma IgammaGradA Igammac Imag InplaceAdd InplaceSub InplaceUpdate Inv
    InvGrad Invert InvertPermutation IsFinite IsInf IsNan LeftShift Less LessEqual Lgamma
    LinSpace ListDiff Log Log1p LogMatrixDeterminant LogicalAnd LogicalNot LogicalOr LowerBound
    Lu MatMul MatrixBandPart MatrixDeterminant MatrixDiag MatrixDiagPart MatrixDiagPartV2
    MatrixDiagPartV3 MatrixDiagV2 MatrixDiagV3 MatrixExponential MatrixInverse MatrixLogarithm
    MatrixSetDiag MatrixSetDiagV2 MatrixSetDiagV3 MatrixSolve MatrixSolveLs MatrixSquareRoot
    MatrixTriangularSolve Max Maximum Mean Min Minimum MirrorPad MirrorPadGrad Mod Mul MulNoNan
    Ndtri Neg NextAfter NotEqual OneHot OnesLike Pack Pad PadV2 ParallelConcat
    ParallelDynamicStitch Polygamma PopulationCount Pow Prod Qr RFFT RFFT2D RFFT3D RFFTND Range
    Rank Real RealDiv Reciprocal ReciprocalGrad Reshape Reverse ReverseSequence ReverseV2
    RightShift Rint Roll Round Rsqrt RsqrtGrad SegmentMax SegmentMaxV2 SegmentMean SegmentMin
    SegmentMinV2 SegmentProd SegmentProdV2 SegmentSum SegmentSumV2 Select SelectV2
    SelfAdjointEig SelfAdjointEigV2 SetSize Shape ShapeN Sign Sin Sinh Size Slice SpaceToBatch
    SpaceToBatchND Spence Split SplitV Sqrt SqrtGrad Square SquaredDifference Squeeze
    StridedSlice StridedSliceGrad Sub Sum Svd Tan TensorScatterAdd TensorScatterMax
    TensorScatterMin TensorScatterSub TensorScatterUpdate TensorStridedSliceUpdate Tile
    TileGrad ToBool Transpose TridiagonalMatMul TridiagonalSolve TruncateDiv TruncateMod Unique
    UniqueV2 UniqueWithCounts UniqueWithCountsV2 Unpack UnravelIndex UnsortedSegmentMax
    UnsortedSegmentMin UnsortedSegmentProd UnsortedSegmentSum UpperBound
    Where Xdivy Xlog1py Xlogy ZerosLike Zeta
    """
)

ALLOWED: frozenset[str] = (
    CONTROL_FLOW
    | VARIABLES
    | OPTIMIZERS
    | TABLES
    | RANDOM
    | STRINGS
    | IMAGE_AUDIO
    | PARSING
    | LISTS_ARRAYS_OF_TENSORS
    | SPARSE_RAGGED
    | QUANTIZATION
    | NN
    | MATH_AND_ARRAYS
)

# Accepted when an attribute shows they stay in the process: PrintV2 unless it prints to a file.
CONDITIONAL = _ops("PrintV2")

# Checkpoint ops: only inside the save / restore function (TF2) or subgraph (TF1) that the
# saver_def designates, with the file prefix derived from its filename argument.
SAVE_OPS = _ops("Save SaveSlices SaveV2 MergeV2Checkpoints ShardedFilename ShardedFilespec")
RESTORE_OPS = _ops("Restore RestoreSlice RestoreV2 ShardedFilename ShardedFilespec")

# Table initialisation from a text file: only when the file name is one of the model's assets.
ASSET_READERS = _ops("InitializeTableFromTextFile InitializeTableFromTextFileV2")

# Never accepted, not even through allow_ops: they run a graph or reach a server of the model's
# choosing. Only turning the check off (check_ops="off" / TFHUB_CHECK_OPS=off) lets them load.
REFUSED: dict[str, str] = {
    "DatasetFromGraph": "runs a graph kept in a tensor, where no scan can see it",
    "RpcClient": "connects to a server",
    "RpcCall": "calls a remote server",
    "RpcCheckStatus": "talks to a remote server",
    "RpcGetValue": "talks to a remote server",
    "RpcServer": "starts a server",
    "RpcServerStart": "starts a server",
    "RpcServerRegister": "starts a server",
    "DeleteRpcFutureResource": "talks to a remote server",
}

_REASONS = {
    "ReadFile": "reads a file",
    "WriteFile": "writes a file",
    "MatchingFiles": "lists files",
    "MatchingFilesDataset": "lists files",
    "ImmutableConst": "maps a file into memory",
    "PyFunc": "runs Python code",
    "PyFuncStateless": "runs Python code",
    "EagerPyFunc": "runs Python code",
    "PrintV2": "writes to a file",
    "DebugIdentity": "writes debug dumps to a file or URL",
    "DebugIdentityV2": "writes debug dumps",
    "DebugIdentityV3": "writes debug dumps",
    "FileSystemSetConfiguration": "reconfigures file systems",
    "LoadAndRemapMatrix": "reads a checkpoint",
    "GenerateVocabRemapping": "reads files",
    "DecodeProtoV2": "may read a descriptor file",
    "DistributedSave": "writes files",
    "SqlDataset": "opens a database",
    "RemoteCall": "runs a function on another device or task",
}
_KEYWORDS = (
    ("Save", "writes files"),
    ("Restore", "reads files"),
    ("Checkpoint", "writes and deletes files"),
    ("File", "reads or writes files"),
    ("Reader", "reads files"),
    ("Summary", "writes summaries to files"),
    ("Debug", "writes debug data to files or URLs"),
    ("DataService", "connects to a data service"),
    ("Dataset", "runs a tf.data pipeline (files, caches, snapshots, services)"),
    ("Iterator", "runs a tf.data pipeline"),
    ("Collective", "talks to other tasks over the network"),
    ("Send", "talks to other devices or tasks"),
    ("Recv", "talks to other devices or tasks"),
)


def describe(op: str) -> str:
    """Why ``op`` is a finding, in a few words."""
    if op in REFUSED:
        return REFUSED[op]
    if op in _REASONS:
        return _REASONS[op]
    for keyword, reason in _KEYWORDS:
        if keyword in op:
            return reason
    return "not on the allowlist of ops that compute only on their inputs"
