// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IConsortRegistry} from "./IConsortRegistry.sol";

/// @title ConsortRegistry
/// @notice The public record of a Consort deployment: compute parties, tasks (committed programs), data owners'
/// input commitments, and results attested by EIP-712 signatures of a quorum of each task's parties.
/// @dev No owner and no upgrade path: every rule below is fixed at deployment. A task's life-cycle state is never
/// stored; `taskState` derives it from the recorded facts (commit count, finalization, recorded expiry) and the
/// block timestamp, so a deadline takes effect without anyone having to send a transaction.
contract ConsortRegistry is IConsortRegistry, EIP712 {
    // ------------------------------------------------------------- constants

    /// @dev A party index must fit the uint256 signer bitmap used by `finalizeTask`; 64 keeps the BGW
    /// degree-reduction traffic (quadratic in the party count) practical as well.
    uint256 private constant MAX_PARTIES = 64;

    /// @dev Each data owner costs createTask two fresh storage slots (list entry and lookup, ~44k gas), and EIP-7825
    /// caps a transaction at 2^24 gas: 256 owners with 64 parties and a 24 KB program use ~15.5M, so every task this
    /// bound admits can be created in one transaction. It also bounds the reads of `attestationDigest`.
    uint256 private constant MAX_DATA_OWNERS = 256;

    /// @dev SEC1 compressed secp256k1 point: one prefix byte (0x02 or 0x03) and the 32-byte x coordinate.
    uint256 private constant ENCRYPTION_KEY_LENGTH = 33;

    uint256 private constant MAX_ENDPOINT_LENGTH = 256;

    /// @dev EIP-712 typeHash of the struct a party signs to attest a result (EIP-712, "Definition of typeHash").
    bytes32 private constant RESULT_ATTESTATION_TYPEHASH =
        keccak256("ResultAttestation(uint256 taskId,bytes32 programHash,bytes32[] inputCommitments,bytes32 resultHash)");

    // ----------------------------------------------------------------- state

    mapping(address account => Party) private _parties;

    /// @dev The highest task id; ids are 1-based so that 0 never names a task.
    uint256 private _taskCount;

    mapping(uint256 taskId => Task) private _tasks;

    /// @dev 1-based position of each party in its task's party list; 0 means "not a party of this task".
    mapping(uint256 taskId => mapping(address party => uint256 indexPlusOne)) private _partyIndex;

    /// @dev 1-based position of each data owner in its task's data-owner list; 0 means "not a data owner".
    mapping(uint256 taskId => mapping(address dataOwner => uint256 indexPlusOne)) private _dataOwnerIndex;

    /// @dev Commitments keyed by the owner's 0-based position, so the attestation digest reads them in order
    /// without loading the owners' addresses. A zero value means "not committed" (zero commitments are refused).
    mapping(uint256 taskId => mapping(uint256 dataOwnerIndex => bytes32 commitment)) private _commitments;

    constructor() EIP712("ConsortRegistry", "1") {}

    // ------------------------------------------------------- party functions

    /// @inheritdoc IConsortRegistry
    function registerParty(bytes calldata encryptionKey, string calldata endpoint) external {
        if (_isRegistered(msg.sender)) revert ConsortPartyAlreadyRegistered(msg.sender);
        _validatePartyRecord(encryptionKey, endpoint);
        _registerParty(msg.sender, encryptionKey, endpoint);
    }

    /// @inheritdoc IConsortRegistry
    function updateParty(bytes calldata encryptionKey, string calldata endpoint) external {
        if (!_isRegistered(msg.sender)) revert ConsortUnknownParty(msg.sender);
        _validatePartyRecord(encryptionKey, endpoint);
        _updateParty(msg.sender, encryptionKey, endpoint);
    }

    // -------------------------------------------------------- task functions

    /// @inheritdoc IConsortRegistry
    /// @dev Checks run cheapest first (sizes, threshold, deadlines), then the per-address checks (registered,
    /// distinct), which share their loops with the writes of the membership lookups.
    function createTask(TaskParams calldata params) external returns (uint256 taskId) {
        if (params.program.length == 0) revert ConsortEmptyProgram();
        uint256 partyCount = params.parties.length;
        if (partyCount == 0 || partyCount > MAX_PARTIES) revert ConsortInvalidPartyCount(partyCount, MAX_PARTIES);
        // BGW multiplication needs 2t + 1 <= n so the degree-2t product polynomial is still interpolable.
        if (params.threshold == 0 || 2 * uint256(params.threshold) + 1 > partyCount) {
            revert ConsortInvalidThreshold(params.threshold, partyCount);
        }
        uint256 dataOwnerCount = params.dataOwners.length;
        if (dataOwnerCount == 0 || dataOwnerCount > MAX_DATA_OWNERS) {
            revert ConsortInvalidDataOwnerCount(dataOwnerCount, MAX_DATA_OWNERS);
        }
        if (block.timestamp >= params.inputDeadline || params.inputDeadline >= params.resultDeadline) {
            revert ConsortInvalidDeadlines(_now(), params.inputDeadline, params.resultDeadline);
        }

        taskId = _taskCount + 1;
        _createTask(taskId, params);
    }

    /// @inheritdoc IConsortRegistry
    function commitInput(uint256 taskId, bytes32 commitment) external {
        Task storage task = _existingTask(taskId);
        TaskState state = _stateOf(task);
        if (state != TaskState.AwaitingInputs) {
            revert ConsortInvalidTaskState(taskId, state, TaskState.AwaitingInputs);
        }
        uint256 indexPlusOne = _dataOwnerIndex[taskId][msg.sender];
        if (indexPlusOne == 0) revert ConsortNotADataOwner(taskId, msg.sender);
        if (commitment == bytes32(0)) revert ConsortZeroCommitment(taskId, msg.sender);
        // Cannot underflow: indexPlusOne != 0 was checked above.
        uint256 index;
        unchecked {
            index = indexPlusOne - 1;
        }
        bytes32 existing = _commitments[taskId][index];
        if (existing != bytes32(0)) revert ConsortInputAlreadyCommitted(taskId, msg.sender, existing);
        _recordCommitment(taskId, task, index, msg.sender, commitment);
    }

    /// @inheritdoc IConsortRegistry
    /// @dev Every signature must be valid, come from a party of the task and be the only one from that party;
    /// the first offending signature reverts the call. Then their count must reach threshold + 1.
    function finalizeTask(uint256 taskId, bytes calldata result, bytes[] calldata signatures) external {
        Task storage task = _existingTask(taskId);
        TaskState state = _stateOf(task);
        if (state != TaskState.Computing) revert ConsortInvalidTaskState(taskId, state, TaskState.Computing);
        if (result.length == 0) revert ConsortEmptyResult(taskId);

        bytes32 resultHash = keccak256(result);
        address[] memory signers = _recoverSigners(taskId, _attestationDigest(taskId, task, resultHash), signatures);
        uint256 required = uint256(task.threshold) + 1;
        if (signers.length < required) revert ConsortQuorumNotReached(taskId, signers.length, required);

        _recordResult(taskId, task, resultHash, result, signers, signatures);
    }

    /// @inheritdoc IConsortRegistry
    function expireTask(uint256 taskId) external {
        Task storage task = _existingTask(taskId);
        TaskState state = _stateOf(task);
        if (state != TaskState.Expired || task.expiredAtBlock != 0) revert ConsortTaskNotExpirable(taskId, state);
        _recordExpiry(taskId, task);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IConsortRegistry
    function getParty(address account) external view returns (Party memory) {
        if (!_isRegistered(account)) revert ConsortUnknownParty(account);
        return _parties[account];
    }

    /// @inheritdoc IConsortRegistry
    function isRegistered(address account) external view returns (bool) {
        return _isRegistered(account);
    }

    /// @inheritdoc IConsortRegistry
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _existingTask(taskId);
    }

    /// @inheritdoc IConsortRegistry
    function taskState(uint256 taskId) external view returns (TaskState) {
        if (!_taskExists(taskId)) return TaskState.None;
        return _stateOf(_tasks[taskId]);
    }

    /// @inheritdoc IConsortRegistry
    function inputCommitments(uint256 taskId) external view returns (bytes32[] memory) {
        return _inputCommitments(taskId, _existingTask(taskId));
    }

    /// @inheritdoc IConsortRegistry
    function attestationDigest(uint256 taskId, bytes32 resultHash) external view returns (bytes32) {
        return _attestationDigest(taskId, _existingTask(taskId), resultHash);
    }

    /// @inheritdoc IConsortRegistry
    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    // ------------------------------------------------------- internal setters

    function _registerParty(address account, bytes calldata encryptionKey, string calldata endpoint) internal {
        Party storage party = _parties[account];
        uint64 timestamp = _now();
        party.encryptionKey = encryptionKey;
        party.endpoint = endpoint;
        party.registeredAt = timestamp;
        party.updatedAt = timestamp;
        emit PartyRegistered(account, encryptionKey, endpoint);
    }

    function _updateParty(address account, bytes calldata encryptionKey, string calldata endpoint) internal {
        Party storage party = _parties[account];
        party.encryptionKey = encryptionKey;
        party.endpoint = endpoint;
        party.updatedAt = _now();
        emit PartyUpdated(account, encryptionKey, endpoint);
    }

    /// @dev Stores task `taskId` and its membership lookups. Reverts on an unregistered or repeated party and on a
    /// repeated data owner: the lookups double as the duplicate detectors, in O(n) instead of O(n^2) comparisons.
    function _createTask(uint256 taskId, TaskParams calldata params) internal {
        _taskCount = taskId;
        Task storage task = _tasks[taskId];
        bytes32 programHash = keccak256(params.program);
        task.programHash = programHash;
        task.requester = msg.sender;
        task.threshold = params.threshold;
        task.createdAtBlock = SafeCast.toUint64(block.number);
        task.inputDeadline = params.inputDeadline;
        task.resultDeadline = params.resultDeadline;
        task.parties = params.parties;
        task.dataOwners = params.dataOwners;
        _indexParties(taskId, params.parties);
        _indexDataOwners(taskId, params.dataOwners);
        _emitTaskCreated(taskId, programHash, params);
    }

    function _indexParties(uint256 taskId, address[] calldata parties) internal {
        mapping(address => uint256) storage partyIndex = _partyIndex[taskId];
        uint256 count = parties.length;
        for (uint256 i = 0; i < count; ++i) {
            address party = parties[i];
            if (!_isRegistered(party)) revert ConsortUnknownParty(party);
            if (partyIndex[party] != 0) revert ConsortDuplicateParty(party);
            partyIndex[party] = i + 1;
        }
    }

    function _indexDataOwners(uint256 taskId, address[] calldata dataOwners) internal {
        mapping(address => uint256) storage dataOwnerIndex = _dataOwnerIndex[taskId];
        uint256 count = dataOwners.length;
        for (uint256 i = 0; i < count; ++i) {
            address dataOwner = dataOwners[i];
            if (dataOwnerIndex[dataOwner] != 0) revert ConsortDuplicateDataOwner(dataOwner);
            dataOwnerIndex[dataOwner] = i + 1;
        }
    }

    /// @dev Split from `_createTask` only because the event's nine fields overflow the legacy code generator's
    /// stack there; it is called as that setter's last step.
    function _emitTaskCreated(uint256 taskId, bytes32 programHash, TaskParams calldata params) private {
        emit TaskCreated(
            taskId,
            msg.sender,
            programHash,
            params.parties,
            params.dataOwners,
            params.threshold,
            params.inputDeadline,
            params.resultDeadline,
            params.program
        );
    }

    function _recordCommitment(
        uint256 taskId,
        Task storage task,
        uint256 index,
        address dataOwner,
        bytes32 commitment
    ) internal {
        _commitments[taskId][index] = commitment;
        uint32 committed;
        // Cannot overflow: each data owner commits once and a task has at most MAX_DATA_OWNERS (256) of them.
        unchecked {
            committed = task.inputsCommitted + 1;
        }
        task.inputsCommitted = committed;
        emit InputCommitted(taskId, dataOwner, commitment, committed);
    }

    function _recordResult(
        uint256 taskId,
        Task storage task,
        bytes32 resultHash,
        bytes calldata result,
        address[] memory signers,
        bytes[] calldata signatures
    ) internal {
        task.resultHash = resultHash;
        task.finalizedAtBlock = SafeCast.toUint64(block.number);
        emit TaskFinalized(taskId, resultHash, result, signers, signatures, msg.sender);
    }

    function _recordExpiry(uint256 taskId, Task storage task) internal {
        task.expiredAtBlock = SafeCast.toUint64(block.number);
        emit TaskExpired(taskId, task.inputsCommitted, msg.sender);
    }

    // -------------------------------------------------------- internal views

    /// @dev The key is a SEC1 compressed secp256k1 point (SEC 1 v2, section 2.3.3). Whether x is on the curve is
    /// left to the nodes, which reject a bad key when they first encrypt to it; checking here would cost a modexp.
    function _validatePartyRecord(bytes calldata encryptionKey, string calldata endpoint) internal pure {
        if (
            encryptionKey.length != ENCRYPTION_KEY_LENGTH || (encryptionKey[0] != 0x02 && encryptionKey[0] != 0x03)
        ) {
            revert ConsortInvalidEncryptionKey(encryptionKey);
        }
        uint256 endpointLength = bytes(endpoint).length;
        if (endpointLength == 0 || endpointLength > MAX_ENDPOINT_LENGTH) revert ConsortInvalidEndpoint(endpoint);
    }

    /// @dev registeredAt is the block timestamp of registration, never 0 on a live chain, so it marks existence.
    function _isRegistered(address account) internal view returns (bool) {
        return _parties[account].registeredAt != 0;
    }

    function _taskExists(uint256 taskId) internal view returns (bool) {
        return taskId != 0 && taskId <= _taskCount;
    }

    function _existingTask(uint256 taskId) internal view returns (Task storage) {
        if (!_taskExists(taskId)) revert ConsortUnknownTask(taskId);
        return _tasks[taskId];
    }

    /// @dev The life cycle of IConsortRegistry.TaskState. Deadlines are inclusive: at the deadline second itself an
    /// input may still be committed (or a result finalized); one second later the task is Expired.
    function _stateOf(Task storage task) internal view returns (TaskState) {
        if (task.finalizedAtBlock != 0) return TaskState.Finalized;
        if (task.expiredAtBlock != 0) return TaskState.Expired;
        if (task.inputsCommitted < task.dataOwners.length) {
            return block.timestamp > task.inputDeadline ? TaskState.Expired : TaskState.AwaitingInputs;
        }
        return block.timestamp > task.resultDeadline ? TaskState.Expired : TaskState.Computing;
    }

    function _inputCommitments(uint256 taskId, Task storage task) internal view returns (bytes32[] memory commitments) {
        uint256 count = task.dataOwners.length;
        commitments = new bytes32[](count);
        mapping(uint256 => bytes32) storage byIndex = _commitments[taskId];
        for (uint256 i = 0; i < count; ++i) {
            commitments[i] = byIndex[i];
        }
    }

    /// @dev EIP-712 hashStruct of ResultAttestation: an array member is encoded as the keccak256 of its elements'
    /// concatenated encodings (EIP-712, "Definition of encodeData"), here the packed 32-byte commitments.
    function _attestationDigest(
        uint256 taskId,
        Task storage task,
        bytes32 resultHash
    ) internal view returns (bytes32) {
        bytes32 commitmentsHash = keccak256(abi.encodePacked(_inputCommitments(taskId, task)));
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(RESULT_ATTESTATION_TYPEHASH, taskId, task.programHash, commitmentsHash, resultHash)
                )
            );
    }

    /// @dev The signer of each signature over `digest`, in signature order. Reverts at the first signature that is
    /// malformed (wrong length, high s, bad v: ECDSA.tryRecover refuses malleable forms), recovers to an account
    /// that is not a party of the task, or repeats a party that already signed.
    function _recoverSigners(
        uint256 taskId,
        bytes32 digest,
        bytes[] calldata signatures
    ) internal view returns (address[] memory signers) {
        mapping(address => uint256) storage partyIndex = _partyIndex[taskId];
        uint256 count = signatures.length;
        signers = new address[](count);
        // Bit i set: party i (0-based) has signed. MAX_PARTIES <= 256 keeps every index inside the word.
        uint256 seen;
        for (uint256 i = 0; i < count; ++i) {
            (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert ConsortInvalidSignature(taskId, i);
            uint256 indexPlusOne = partyIndex[signer];
            if (indexPlusOne == 0) revert ConsortSignerNotAParty(taskId, signer);
            uint256 bit;
            // Cannot underflow (indexPlusOne != 0) nor shift out of the word (indexPlusOne <= MAX_PARTIES).
            unchecked {
                bit = 1 << (indexPlusOne - 1);
            }
            if (seen & bit != 0) revert ConsortDuplicateSigner(taskId, signer);
            seen |= bit;
            signers[i] = signer;
        }
    }

    /// @dev block.timestamp as uint64; SafeCast reverts rather than truncate (uint64 seconds last ~5.8e11 years).
    function _now() internal view returns (uint64) {
        return SafeCast.toUint64(block.timestamp);
    }
}
