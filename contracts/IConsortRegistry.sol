// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IConsortRegistry
/// @notice Every event, error, struct and enum of the Consort registry, and its external functions.
/// @dev The registry is the public record of a Consort deployment: who the compute parties are, what each
/// task computes (its canonical program, whose keccak256 is the program hash), which data owners committed
/// which inputs, and the result a quorum of the task's parties attested to with EIP-712 signatures.
/// An auditor can check a task from this contract's storage and events alone.
interface IConsortRegistry {
    // ------------------------------------------------------------------ enums

    /// @notice Life cycle of a task. The registry computes it from storage and the clock (see `taskState`).
    /// None: no such task. AwaitingInputs: before the input deadline, some data owners have not committed.
    /// Computing: every input is committed and the result deadline has not passed; parties compute and a
    /// quorum may finalize. Finalized: a quorum-signed result is recorded. Expired: the input deadline
    /// passed with inputs missing, or the result deadline passed without a result.
    enum TaskState {
        None,
        AwaitingInputs,
        Computing,
        Finalized,
        Expired
    }

    // ---------------------------------------------------------------- structs

    /// @notice A registered compute party. Its signing address is the account that registered it.
    struct Party {
        /// @dev 33-byte SEC1-compressed secp256k1 public key; data owners and peers encrypt shares to it.
        bytes encryptionKey;
        /// @dev Base URL of the party's node API, e.g. "http://127.0.0.1:7001".
        string endpoint;
        uint64 registeredAt;
        uint64 updatedAt;
    }

    /// @notice What a requester passes to `createTask`.
    struct TaskParams {
        /// @dev Canonical program bytes; the registry stores keccak256(program) and emits the bytes.
        bytes program;
        /// @dev Ordered, distinct, registered compute parties; party i (0-based) holds Shamir share x = i + 1.
        address[] parties;
        /// @dev Ordered, distinct data owners; each commits exactly one input.
        address[] dataOwners;
        /// @dev Shamir threshold t: any t + 1 shares reconstruct, t reveal nothing. Requires 2t + 1 <= parties.
        uint8 threshold;
        /// @dev Unix time (seconds) after which no input may be committed.
        uint64 inputDeadline;
        /// @dev Unix time (seconds) after which the task can no longer be finalized.
        uint64 resultDeadline;
    }

    /// @notice A task as stored. The state is not stored: see `taskState`.
    struct Task {
        bytes32 programHash;
        address requester;
        uint8 threshold;
        uint64 createdAtBlock;
        uint64 inputDeadline;
        uint64 resultDeadline;
        uint32 inputsCommitted;
        uint64 finalizedAtBlock;
        uint64 expiredAtBlock;
        bytes32 resultHash;
        address[] parties;
        address[] dataOwners;
    }

    // ----------------------------------------------------------------- events

    /// @notice A party registered itself (msg.sender is its signing address).
    event PartyRegistered(address indexed party, bytes encryptionKey, string endpoint);

    /// @notice A registered party changed its encryption key or endpoint.
    event PartyUpdated(address indexed party, bytes encryptionKey, string endpoint);

    /// @notice A task was created. `program` holds the exact bytes whose keccak256 is `programHash`.
    event TaskCreated(
        uint256 indexed taskId,
        address indexed requester,
        bytes32 indexed programHash,
        address[] parties,
        address[] dataOwners,
        uint8 threshold,
        uint64 inputDeadline,
        uint64 resultDeadline,
        bytes program
    );

    /// @notice A data owner committed its input to a task; `inputsCommitted` counts commitments so far.
    event InputCommitted(uint256 indexed taskId, address indexed dataOwner, bytes32 commitment, uint32 inputsCommitted);

    /// @notice A quorum of the task's parties attested to `result`; `signatures[i]` was made by `signers[i]`.
    event TaskFinalized(
        uint256 indexed taskId,
        bytes32 resultHash,
        bytes result,
        address[] signers,
        bytes[] signatures,
        address submitter
    );

    /// @notice Someone recorded that a task expired; `inputsCommitted` < data owners means it expired waiting for inputs.
    event TaskExpired(uint256 indexed taskId, uint32 inputsCommitted, address by);

    // ----------------------------------------------------------------- errors

    error ConsortPartyAlreadyRegistered(address party);
    error ConsortUnknownParty(address party);
    error ConsortInvalidEncryptionKey(bytes encryptionKey);
    error ConsortInvalidEndpoint(string endpoint);

    error ConsortUnknownTask(uint256 taskId);
    error ConsortEmptyProgram();
    error ConsortInvalidPartyCount(uint256 count, uint256 max);
    error ConsortDuplicateParty(address party);
    error ConsortInvalidThreshold(uint8 threshold, uint256 partyCount);
    error ConsortInvalidDataOwnerCount(uint256 count, uint256 max);
    error ConsortDuplicateDataOwner(address dataOwner);
    error ConsortInvalidDeadlines(uint64 currentTime, uint64 inputDeadline, uint64 resultDeadline);

    error ConsortInvalidTaskState(uint256 taskId, TaskState state, TaskState expected);
    error ConsortNotADataOwner(uint256 taskId, address account);
    error ConsortZeroCommitment(uint256 taskId, address dataOwner);
    error ConsortInputAlreadyCommitted(uint256 taskId, address dataOwner, bytes32 commitment);

    error ConsortEmptyResult(uint256 taskId);
    error ConsortInvalidSignature(uint256 taskId, uint256 index);
    error ConsortSignerNotAParty(uint256 taskId, address signer);
    error ConsortDuplicateSigner(uint256 taskId, address signer);
    error ConsortQuorumNotReached(uint256 taskId, uint256 signatures, uint256 required);
    error ConsortTaskNotExpirable(uint256 taskId, TaskState state);

    // -------------------------------------------------------------- functions

    /// @notice Registers msg.sender as a compute party.
    /// @param encryptionKey 33-byte compressed secp256k1 public key (prefix 0x02 or 0x03).
    /// @param endpoint Non-empty base URL of the party's node API (at most 256 bytes).
    function registerParty(bytes calldata encryptionKey, string calldata endpoint) external;

    /// @notice Replaces msg.sender's encryption key and endpoint. Tasks already created keep their party list.
    /// @param encryptionKey 33-byte compressed secp256k1 public key.
    /// @param endpoint Non-empty base URL of the party's node API.
    function updateParty(bytes calldata encryptionKey, string calldata endpoint) external;

    /// @notice Creates a task; msg.sender becomes its requester.
    /// @param params The program, parties, data owners, threshold and deadlines.
    /// @return taskId The new task's id (ids start at 1 and increase by one).
    function createTask(TaskParams calldata params) external returns (uint256 taskId);

    /// @notice Commits msg.sender's input to a task, before its input deadline. Once only.
    /// @param taskId The task.
    /// @param commitment Non-zero commitment to the input's shares (see docs/protocol.md).
    function commitInput(uint256 taskId, bytes32 commitment) external;

    /// @notice Records a task's result, attested by EIP-712 signatures of at least threshold + 1 of its parties.
    /// @param taskId The task, which must be Computing.
    /// @param result The result bytes; the parties signed keccak256(result).
    /// @param signatures 65-byte ECDSA signatures over `attestationDigest(taskId, keccak256(result))`.
    function finalizeTask(uint256 taskId, bytes calldata result, bytes[] calldata signatures) external;

    /// @notice Records that a task expired (missed its input or result deadline). Anyone may call it.
    /// @param taskId The task, whose computed state must be Expired and not yet recorded.
    function expireTask(uint256 taskId) external;

    /// @notice The registered party at `account`; reverts with ConsortUnknownParty if there is none.
    /// @param account The party's signing address.
    function getParty(address account) external view returns (Party memory);

    /// @notice Whether `account` is a registered party.
    /// @param account The address to look up.
    function isRegistered(address account) external view returns (bool);

    /// @notice The stored task; reverts with ConsortUnknownTask if there is none.
    /// @param taskId The task.
    function getTask(uint256 taskId) external view returns (Task memory);

    /// @notice The task's life-cycle state computed now (None for an unknown id).
    /// @param taskId The task.
    function taskState(uint256 taskId) external view returns (TaskState);

    /// @notice The input commitments in data-owner order (zero where an owner has not committed).
    /// @param taskId The task.
    function inputCommitments(uint256 taskId) external view returns (bytes32[] memory);

    /// @notice The EIP-712 digest a party signs to attest `resultHash` as the task's result.
    /// @dev typed data ResultAttestation(uint256 taskId,bytes32 programHash,bytes32[] inputCommitments,bytes32 resultHash)
    /// under the domain (name "ConsortRegistry", version "1", chainId, this contract).
    /// @param taskId The task.
    /// @param resultHash keccak256 of the result bytes.
    function attestationDigest(uint256 taskId, bytes32 resultHash) external view returns (bytes32);

    /// @notice How many tasks exist (the highest task id).
    function taskCount() external view returns (uint256);
}
